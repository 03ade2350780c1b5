"""The port the service uses to read and write FHIR resources in a practice's EHR."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Written:
    """Outcome of a create or update: where the resource now lives and at which version."""

    id: str
    version_id: str | None
    etag: str | None
    resource: dict | None
    created: bool


class EhrGateway(Protocol):
    """Minimal FHIR R4 REST operations; implementations raise integrations.ehr.errors."""

    def read(self, resource_type: str, resource_id: str) -> dict:
        """Return the current version of one resource."""
        ...

    def search(self, resource_type: str, params: Mapping[str, str]) -> list[dict]:
        """Return the resources matching a search."""
        ...

    def search_pages(self, resource_type: str, params: Mapping[str, str]) -> Iterator[list[dict]]:
        """Yield the matches page by page, lazily: the caller decides how many pages to read."""
        ...

    def create(self, resource: dict, if_none_exist: str | None) -> Written:
        """Create a resource; with if_none_exist an existing match is returned, created=False."""
        ...

    def update(self, resource: dict, if_match: str | None) -> Written:
        """Replace resource {type}/{id}; with if_match only if the version still matches."""
        ...
