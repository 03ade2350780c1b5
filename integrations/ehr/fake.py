"""An in-memory EhrGateway with FHIR versioning semantics, for unit tests and local runs."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from integrations.ehr.errors import EhrConflict, EhrError, EhrNotFound, EhrPermanentError
from integrations.ehr.etags import etag_for, version_from_etag
from integrations.ehr.port import EhrGateway, Written
from integrations.ehr.resources import has_identifier

SUPPORTED_SEARCH_PARAMS = frozenset({"identifier", "_id"})


@dataclass
class _PlannedFailure:
    error: EhrError
    remaining: int
    operation: str | None
    resource_type: str | None
    after_write: bool

    def applies_to(self, operation: str, resource_type: str) -> bool:
        return (
            self.remaining > 0
            and self.operation in (None, operation)
            and self.resource_type in (None, resource_type)
        )


class InMemoryEhr(EhrGateway):
    """Stores every version of every resource; honours If-None-Exist and If-Match."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._versions: dict[tuple[str, str], list[dict]] = {}
        self._failures: list[_PlannedFailure] = []
        self._ids = itertools.count(1)
        self.calls: list[tuple[str, str]] = []

    def fail_next(
        self,
        times: int,
        error: EhrError,
        operation: str | None = None,
        resource_type: str | None = None,
        after_write: bool = False,
    ) -> None:
        """Make the next `times` calls (of that operation and resource type, or any) raise.

        With after_write the call takes effect first and then raises, as when the EHR wrote
        the resource but its answer never reached us.
        """
        self._failures.append(
            _PlannedFailure(error, times, operation, resource_type, after_write)
        )

    def resources(self, resource_type: str) -> list[dict]:
        """The current version of every stored resource of a type."""
        return [
            copy.deepcopy(versions[-1])
            for (stored_type, _), versions in self._versions.items()
            if stored_type == resource_type
        ]

    def history(self, resource_type: str, resource_id: str) -> list[dict]:
        """Every version of one resource, oldest first."""
        return copy.deepcopy(self._versions.get((resource_type, resource_id), []))

    def read(self, resource_type: str, resource_id: str) -> dict:
        """Return the current version or raise EhrNotFound."""
        return self._call("read", resource_type, lambda: self._current(resource_type, resource_id))

    def search(self, resource_type: str, params: Mapping[str, str]) -> list[dict]:
        """Search by identifier (system|value or value) and/or _id."""
        return self._call("search", resource_type, lambda: self._search(resource_type, params))

    def search_pages(self, resource_type: str, params: Mapping[str, str]) -> Iterator[list[dict]]:
        """The same matches as one page."""
        yield self.search(resource_type, params)

    def create(self, resource: dict, if_none_exist: str | None) -> Written:
        """Create, or with if_none_exist return the single existing match (created=False)."""
        resource_type = resource["resourceType"]
        return self._call("create", resource_type, lambda: self._create(resource, if_none_exist))

    def update(self, resource: dict, if_match: str | None) -> Written:
        """Store a new version; a stale if_match raises EhrConflict (412)."""
        resource_type = resource["resourceType"]
        return self._call("update", resource_type, lambda: self._update(resource, if_match))

    def _call(self, operation: str, resource_type: str, action: Callable):
        self.calls.append((operation, resource_type))
        failure = self._take_failure(operation, resource_type)
        if failure is not None and not failure.after_write:
            raise failure.error
        result = action()
        if failure is not None:
            raise failure.error
        return result

    def _take_failure(self, operation: str, resource_type: str) -> _PlannedFailure | None:
        for failure in self._failures:
            if failure.applies_to(operation, resource_type):
                failure.remaining -= 1
                return failure
        return None

    def _current(self, resource_type: str, resource_id: str) -> dict:
        versions = self._versions.get((resource_type, resource_id))
        if not versions:
            raise EhrNotFound(f"{resource_type}/{resource_id} not found", 404)
        return copy.deepcopy(versions[-1])

    def _search(self, resource_type: str, params: Mapping[str, str]) -> list[dict]:
        unsupported = set(params) - SUPPORTED_SEARCH_PARAMS
        if unsupported:
            raise ValueError(f"InMemoryEhr cannot search by {sorted(unsupported)}")
        return [
            resource
            for resource in self.resources(resource_type)
            if _matches(resource, params)
        ]

    def _create(self, resource: dict, if_none_exist: str | None) -> Written:
        resource_type = resource["resourceType"]
        if if_none_exist:
            matches = self._search(resource_type, dict(parse_qsl(if_none_exist)))
            if len(matches) > 1:
                raise EhrPermanentError("conditional create matched several resources", 412)
            if matches:
                return _written(matches[0], created=False)
        resource_id = f"{resource_type.lower()}-{next(self._ids)}"
        return _written(self._store(resource, resource_id, version=1), created=True)

    def _update(self, resource: dict, if_match: str | None) -> Written:
        resource_type, resource_id = resource["resourceType"], resource["id"]
        versions = self._versions.get((resource_type, resource_id), [])
        current_version = versions[-1]["meta"]["versionId"] if versions else None
        if if_match is not None and version_from_etag(if_match) != current_version:
            raise EhrConflict(
                f"{resource_type}/{resource_id} is at version {current_version}, not {if_match}",
                412,
            )
        stored = self._store(resource, resource_id, version=len(versions) + 1)
        return _written(stored, created=not versions)

    def _store(self, resource: dict, resource_id: str, version: int) -> dict:
        stored = copy.deepcopy(resource)
        stored["id"] = resource_id
        stored["meta"] = {
            **(stored.get("meta") or {}),
            "versionId": str(version),
            "lastUpdated": self._clock().isoformat(),
        }
        self._versions.setdefault((stored["resourceType"], resource_id), []).append(stored)
        return copy.deepcopy(stored)


def _matches(resource: dict, params: Mapping[str, str]) -> bool:
    for name, wanted in params.items():
        if name == "_id" and resource.get("id") != wanted:
            return False
        if name == "identifier" and not has_identifier(resource, wanted):
            return False
    return True


def _written(resource: dict, created: bool) -> Written:
    version = resource["meta"]["versionId"]
    return Written(resource["id"], version, etag_for(version), resource, created)
