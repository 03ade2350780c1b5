"""Helpers for the Canvas plugin's tests: where the plugin is, and a client of driver.py."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

from support import ROOT

PLUGIN_PROJECT = ROOT / "integrations" / "canvas_plugin"
CANVAS_ENV = {**os.environ, "CANVAS_NO_UPDATE_CHECK": "1"}


class PluginDriver:
    """Sends commands to driver.py and reads its results (effects, HTTP calls)."""

    def __init__(self, canvas_bin: Path, variables: dict, log: Path):
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [str(canvas_bin / "python"), str(Path(__file__).with_name("driver.py")),
             json.dumps(variables)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            cwd=PLUGIN_PROJECT, env=CANVAS_ENV)

    def __call__(self, do: str, timeout: float = 120, **command) -> dict:
        self.process.stdin.write(json.dumps({"do": do, **command}) + "\n")
        self.process.stdin.flush()
        while True:
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            line = self.process.stdout.readline() if ready else ""
            if not line:
                raise AssertionError(f"the plugin driver gave no result for {do!r}; "
                                     f"its log: {self.log.name}")
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
