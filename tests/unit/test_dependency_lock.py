"""The lock files (issue 12: dependencies locked with hashes) cover what pyproject.toml asks
for, every pin carries hashes, and the audit's verdicts (tests/audit_dependencies.py) are
the ones docs/security.md promises. Offline: the lock is read, not resolved again."""

from __future__ import annotations

import re
import sys
import tomllib

import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "tests"))
import audit_dependencies  # noqa: E402

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^ ;\\]+)", re.M)


def pins(name: str) -> dict[str, str]:
    return {canonical(n): v for n, v in PIN.findall((ROOT / name).read_text())}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in requirements}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_dependency_is_locked():
    runtime, test = pins("requirements.lock"), pins("requirements-test.lock")
    missing = requirement_names(PROJECT["dependencies"]) - set(runtime)
    assert not missing, f"not in requirements.lock (run make lock): {sorted(missing)}"
    missing = requirement_names(PROJECT["optional-dependencies"]["test"]) - set(test)
    assert not missing, f"not in requirements-test.lock (run make lock): {sorted(missing)}"
    # The test lock is made with the runtime lock as constraints: the same versions in both.
    assert {name: test[name] for name in runtime} == runtime


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-test.lock"])
def test_every_pin_carries_hashes(lock):
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().split("\n", 2)[2])
    assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry)


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


@pytest.mark.parametrize(("found", "required", "status"), [
    (report({"name": "a", "version": "1", "vulns": []}), False, 0),
    (report({"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": ["2"]}]}),
     False, 1),
    (report({"name": "a", "skip_reason": "not found"}), False, 0),  # NOT AUDITED, said loudly
    (report({"name": "a", "skip_reason": "not found"}), True, 1),
    (None, False, 0),
    (None, True, 1),
])
def test_the_audits_verdicts(monkeypatch, capsys, found, required, status):
    monkeypatch.setattr(audit_dependencies, "audit", lambda lock: found)
    if required:
        monkeypatch.setenv("ALLIANCE_AUDIT_REQUIRED", "1")
    else:
        monkeypatch.delenv("ALLIANCE_AUDIT_REQUIRED", raising=False)
    assert audit_dependencies.main(ROOT / "requirements.lock") == status
    said = capsys.readouterr().err
    if found is None or any(d.get("skip_reason") for d in found["dependencies"]):
        assert "NOT AUDITED" in said
