"""The Canvas plugin (integrations/canvas_plugin/) passes `canvas validate` and its own tests,
both run with the pinned Canvas SDK in .venv-canvas."""

from __future__ import annotations

import ast
import re
import subprocess

from canvas_plugin.harness import CANVAS_ENV, PLUGIN_PROJECT


def test_canvas_validate_passes(canvas_bin):
    done = subprocess.run([str(canvas_bin / "canvas"), "validate", "alliance_feedback"],
                          cwd=PLUGIN_PROJECT, env=CANVAS_ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "has a valid CANVAS_MANIFEST.json file" in done.stdout
    assert "All 3 handler(s) load cleanly in the sandbox." in done.stdout
    assert "Warning" not in done.stdout


def test_the_plugins_own_tests_pass(canvas_bin):
    done = subprocess.run([str(canvas_bin / "pytest"), "-q", "-p", "no:warnings"],
                          cwd=PLUGIN_PROJECT, env=CANVAS_ENV, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 30 and " failed" not in done.stdout


def test_the_plugin_imports_nothing_of_the_service():
    """It runs inside Canvas, where neither `service` nor our other packages exist."""
    ours = {"service", "schemas", "integrations", "support"}
    for path in (PLUGIN_PROJECT / "alliance_feedback").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not {name.split(".")[0] for name in names} & ours, (path, names)
