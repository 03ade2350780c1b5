"""What clients' data at rest costs (docs/security.md): the audit row of a read, on SQLite and
PostgreSQL, and the encryption of each sealed value.

* A SMART view reads one client's stored state in one transaction; a CDS hook (100 ms p99
  budget) does the same after inserting its token's `jti`. With the audit log, the same
  transaction also inserts one row. Each form runs with and without the row, interleaved,
  REPEAT times each, on a table of CLIENTS clients: p50, p99 and the difference.
* Sealing and opening what is stored per event, per client and per answer (Fernet under the
  derived client-data key), and the phone's keyed hash: microseconds per call.

    .venv/bin/python benchmarks/data_at_rest.py [--repeat 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import fresh_database, run_facts  # noqa: E402

KEY = "Qm3v9TzKx7LpW2dHr8YfN4cJs6BgUa1E-tRkVo5XiZy0"
CLIENTS = 2000


def audit_cost(database_url: str, repeat: int) -> dict:
    """p50/p99 (ms) of a one-client read transaction, without and with its audit row: a
    read-only one (the SMART view), and one that also inserts a jti (the CDS hook)."""
    from service.persistence.db import make_engine
    from service.persistence.migrate import upgrade
    from service.persistence.queries import audit, clinician
    from service.persistence.queries import trend as trend_queries

    engine = make_engine(database_url)
    upgrade(engine)
    _fill(engine)
    now = datetime.now(timezone.utc)

    def read(with_audit: bool, jti: bool) -> float:
        patient = f"pat-{uuid.uuid4().int % CLIENTS:05d}"
        started = time.perf_counter()
        with engine.begin() as conn:
            if jti:
                clinician.remember_token_id(conn, uuid.uuid4().hex, now)
            trend_queries.open_episode(conn, "northside", patient)
            if with_audit:
                audit.record(conn, [audit.Access("northside", patient, "cds-client:https://ehr",
                                                 audit.CDS, audit.READ, "card")], now)
        return (time.perf_counter() - started) * 1000

    result = {}
    for form, jti in (("read_only", False), ("with_a_jti_insert", True)):
        for _ in range(200):  # warm the pool and the caches
            read(False, jti), read(True, jti)
        plain, audited = [], []
        for _ in range(repeat):
            plain.append(read(False, jti))
            audited.append(read(True, jti))
        without, with_row = _percentiles(plain), _percentiles(audited)
        result[form] = {"without_audit": without, "with_audit": with_row, "added_ms": {
            name: round(with_row[name] - without[name], 3) for name in ("p50", "p99")}}
    engine.dispose()
    return result


def _fill(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO rupture_episodes (id, practice_id, patient_id, status, "
                          "opened_by_survey_id, opened_at) VALUES (:id, 'northside', :p, "
                          "'open', 's', :at)"),
                     [{"id": str(uuid.uuid4()), "p": f"pat-{i:05d}",
                       "at": datetime.now(timezone.utc)} for i in range(0, CLIENTS, 2)])


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 3),
            "p99": round(ordered[int(len(ordered) * 0.99) - 1], 3), "n": len(ordered)}


def crypto_cost() -> dict:
    """Microseconds per call of each sealing step."""
    from service.crypto import ClientVault, KeyRing

    vault = ClientVault(KeyRing([KEY]))
    payload = {"version": 2, "outcome": "completed", "session": {
        "session_id": "enc-1001", "patient_id": "pat-17", "practitioner_id": "prac-3",
        "ended_at": "2026-11-26T15:00:00+00:00", "dedupe_keys": ["session:enc-1001"],
        "contact": {"phone": "+15551234567", "email": "client@example.org", "locale": "en"}}}
    answers = {"bond": 7, "goals": 8, "approach": 6, "overall": 7, "tension": True,
               "tension_intensity": 3, "comment": "We talked past each other about homework."}
    sealed_payload, sealed_phone = vault.seal(payload), vault.seal_text("+15551234567")
    steps = {
        "seal event payload": lambda: vault.seal(payload),
        "open event payload": lambda: vault.open(sealed_payload),
        "seal answers": lambda: vault.seal(answers),
        "seal phone": lambda: vault.seal_text("+15551234567"),
        "open phone": lambda: vault.open_text(sealed_phone),
        "phone keyed hash": lambda: vault.phone_digest("northside", "+15551234567"),
    }
    result = {}
    for name, step in steps.items():
        runs = timeit.repeat(step, number=2000, repeat=5)
        result[name] = round(min(runs) / 2000 * 1e6, 1)
    result["sealed sizes (characters)"] = {"phone": len(sealed_phone),
                                           "event payload": len(sealed_payload),
                                           "answers": len(vault.seal(answers))}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3000)
    args = parser.parse_args(argv)
    result = {**run_facts(" ".join(["benchmarks/data_at_rest.py", *(argv or sys.argv[1:])])),
              "crypto_us_per_call": crypto_cost()}
    with tempfile.TemporaryDirectory() as folder:
        result["audit_sqlite"] = audit_cost(f"sqlite:///{folder}/bench.db", args.repeat)
    with fresh_database() as url:
        result["audit_postgresql"] = audit_cost(url, args.repeat)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
