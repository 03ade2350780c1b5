"""FHIR versions as HTTP ETags (W/"3"): the one place that writes and reads them."""

from __future__ import annotations


def etag_for(version: str) -> str:
    """The weak ETag for a version id; an ETag given as-is is returned unchanged."""
    if version.startswith(('W/"', '"')):
        return version
    return f'W/"{version}"'


def version_from_etag(etag: str | None) -> str | None:
    """The version id inside an ETag such as W/"3" (or a bare "3"), or None."""
    if not etag:
        return None
    value = etag.strip()
    value = value.removeprefix("W/")
    value = value.strip('"')
    return value or None
