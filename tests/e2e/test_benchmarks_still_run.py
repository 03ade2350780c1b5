"""The in-process benchmarks of `make bench` still run against today's schema and code.

`make bench` is not part of `make test`, and a benchmark that seeds its own rows breaks
silently when the schema changes (the trend view's did when answers were sealed at rest).
Each runs here in a small form, as its own process, on the tests' database servers; the
figures are not looked at (speed is measured by `make bench` on a quiet machine,
docs/performance.md), only that the run finishes and says what it measured.
The benchmarks that start the service's processes are covered by tests/chaos and tests/e2e.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support import ROOT, require

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def run_benchmark(tmp_path, *args: str) -> str:
    env = {**os.environ, "ALLIANCE_BENCH_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_trend_view_benchmark_seeds_and_renders_on_sqlite(tmp_path):
    result = json.loads(run_benchmark(tmp_path, "trend_view.py", "--requests", "3",
                                      "--database", "sqlite"))
    assert result["sessions"] == 100
    assert set(result["sqlite"]) == {"view", "view.json", "steps"}
    assert result["sqlite"]["view"]["bytes"] > 10_000  # 100 sessions' charts and table
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["trend"]


def test_the_alert_document_benchmark_renders_a_pdf(tmp_path):
    output = run_benchmark(tmp_path, "alert_document.py", "--renders", "3")
    assert "pages: 1\n" in output and "pdf_bytes: [" in output
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["alert"]


def test_the_data_at_rest_benchmark_measures_sealing_and_the_audit_row(tmp_path):
    require("postgres")
    result = json.loads(run_benchmark(tmp_path, "data_at_rest.py", "--repeat", "20"))
    assert {"seal answers", "open phone"} <= set(result["crypto_us_per_call"])
    assert set(result["audit_sqlite"]) == set(result["audit_postgresql"]) == {
        "read_only", "with_a_jti_insert"}


def test_the_governance_benchmark_replays_and_reports(tmp_path):
    require("postgres")
    result = json.loads(run_benchmark(tmp_path, "alert_governance.py", "--episodes", "200",
                                      "--repeat", "2"))
    for database in ("sqlite", "postgresql"):
        assert "alerts (episodes opened)" in result[database]["what_if_output"]
        assert result[database]["episodes"] >= 200
