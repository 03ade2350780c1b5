"""The code stays easy to change: no module over 500 lines, no handler function over 30.

The limits are DEVELOPERS.md's (issue 10 made them hold). The files are parsed, not imported, so
the check is fast and holds whatever is added later. A function's length runs from its `def`
line to its last line (docstring and comments included, decorators not).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_FOLDERS = ("service", "schemas", "integrations")
HANDLER_FOLDER = "service/handlers"
MAX_MODULE_LINES = 500
MAX_HANDLER_FUNCTION_LINES = 30


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def long_modules(paths: list[Path], limit: int) -> list[str]:
    """`path (N lines)` for every module over `limit` lines."""
    offenders = []
    for path in paths:
        lines = len(path.read_text("utf-8").splitlines())
        if lines > limit:
            offenders.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    return offenders


def long_functions(source: str, where: str, limit: int) -> list[str]:
    """`where:line name (N lines)` for every function or method over `limit` lines."""
    offenders = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                offenders.append((node.lineno, f"{where}:{node.lineno} {node.name} ({lines} lines)"))
    return [text for _, text in sorted(offenders)]


def test_no_module_is_over_500_lines():
    paths = python_files(*MODULE_FOLDERS)
    assert ROOT / "service" / "bootstrap.py" in paths  # the walk found the code

    offenders = long_modules(paths, MAX_MODULE_LINES)

    assert not offenders, (
        f"modules over {MAX_MODULE_LINES} lines (split them by concern): " + "; ".join(offenders)
    )


def test_no_handler_function_is_over_30_lines():
    paths = python_files(HANDLER_FOLDER)
    assert ROOT / "service" / "handlers" / "polling.py" in paths

    offenders = [
        offender
        for path in paths
        for offender in long_functions(
            path.read_text("utf-8"), str(path.relative_to(ROOT)), MAX_HANDLER_FUNCTION_LINES
        )
    ]

    assert not offenders, (
        f"handler functions over {MAX_HANDLER_FUNCTION_LINES} lines (extract named steps): "
        + "; ".join(offenders)
    )


def function_of(lines: int, name: str = "f", indent: str = "") -> str:
    """Source of a function exactly `lines` lines long, `def` line included."""
    body = [f"{indent}    x = {n}" for n in range(lines - 1)]
    return "\n".join([f"{indent}def {name}():", *body]) + "\n"


def test_the_function_measure_names_methods_nested_and_async_functions_over_the_limit():
    source = (
        function_of(30, "at_the_limit")
        + function_of(31, "one_over")
        + "class Handler:\n"
        + function_of(31, "method", indent="    ")
        + "async "
        + function_of(40, "fetch")
    )

    offenders = long_functions(source, "h.py", 30)

    assert offenders == [
        "h.py:31 one_over (31 lines)",
        "h.py:63 method (31 lines)",
        "h.py:94 fetch (40 lines)",
    ]
