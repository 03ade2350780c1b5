"""Searches every column of every table of a database for values that must not be stored in
plaintext (clients' phone numbers, e-mail addresses, free-text answers): CONTRACT §11.

Used by the tests (tests/security/test_data_at_rest.py) and by `make chaos` after its run. The
tables are reflected from the database itself, so a table or column added later is searched
too without anyone listing it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Engine, MetaData, select


@dataclass
class ScanResult:
    tables: int = 0
    columns: int = 0
    rows: int = 0
    values: int = 0
    needles: int = 0
    found: list[str] = field(default_factory=list)  # "table.column: needle"

    def as_dict(self) -> dict:
        return {"tables": self.tables, "columns": self.columns, "rows": self.rows,
                "values": self.values, "needles": self.needles, "found": self.found[:20],
                "found_count": len(self.found)}


def scan_database(engine: Engine, needles: list[str]) -> ScanResult:
    """Every value of every column, as text, searched for every needle (case-insensitive)."""
    wanted = sorted({needle.lower() for needle in needles if needle})
    metadata = MetaData()
    metadata.reflect(bind=engine)
    result = ScanResult(tables=len(metadata.tables), needles=len(wanted))
    found: set[str] = set()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            result.columns += len(table.columns)
            for row in conn.execute(select(table)).yield_per(1000):
                result.rows += 1
                for column, value in zip(table.columns, row, strict=True):
                    if value is None:
                        continue
                    result.values += 1
                    text = _as_text(value).lower()
                    found.update(f"{table.name}.{column.name}: {needle}"
                                 for needle in wanted if needle in text)
    result.found = sorted(found)
    return result


def needles_for(phone: str, email: str, *free_text: str) -> list[str]:
    """A phone in E.164 and as its last ten digits (another spelling), the e-mail address, and
    each free text."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return [phone, digits[-10:], email, *free_text]


def _as_text(value) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
