"""FHIR R4 REST client: the EhrGateway over one requests.Session."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

import requests

from integrations.ehr.auth import AuthProvider, build_auth
from integrations.ehr.errors import (
    EhrAuthError,
    EhrConflict,
    EhrError,
    EhrNotFound,
    EhrPermanentError,
    EhrTransientError,
    refused_destination,
)
from integrations.ehr.etags import etag_for, version_from_etag
from integrations.ehr.outcomes import describe_outcome
from integrations.ehr.port import EhrGateway, Written
from integrations.ehr.resources import FHIR_ID
from integrations.http import (
    DEFAULT_TIMEOUT,
    TRANSPORT_FAILURES,
    build_session,
    parse_retry_after,
)
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings

FHIR_JSON = "application/fhir+json"
# A search for one identifier should fit one page; the bound stops a server that loops.
MAX_SEARCH_PAGES = 20


class FhirGateway(EhrGateway):
    """EhrGateway speaking FHIR R4 JSON over HTTP, with auth, timeouts and error mapping."""

    def __init__(
        self,
        base_url: str,
        auth: AuthProvider,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        network: NetworkSettings = PUBLIC_ONLY,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._session = session or build_session(timeout, network=network)
        self._timeout = timeout
        self._clock = clock

    def read(self, resource_type: str, resource_id: str) -> dict:
        """GET {base}/{type}/{id}."""
        response = self._send("GET", resource_type, self._url(resource_type, resource_id))
        resource = _json_body(response)
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise EhrError(f"FHIR GET {resource_type} answered without a {resource_type}")
        return resource

    def search(self, resource_type: str, params: Mapping[str, str]) -> list[dict]:
        """GET {base}/{type}?params, following the Bundle's next links on the same server.

        A search for one identifier fits one page: more than MAX_SEARCH_PAGES is a server that
        loops, and an error. Callers that expect many pages (polling) use search_pages.
        """
        pages = self.search_pages(resource_type, params)
        matches = [resource for page in itertools.islice(pages, MAX_SEARCH_PAGES)
                   for resource in page]
        if next(pages, None) is not None:
            raise EhrError(f"FHIR search {resource_type} has more than {MAX_SEARCH_PAGES} pages")
        return matches

    def search_pages(self, resource_type: str, params: Mapping[str, str]) -> Iterator[list[dict]]:
        """The matches page by page, following next links for as long as the caller reads:
        the caller bounds how many pages it takes (the generator is lazy)."""
        url: str | None = self._url(resource_type)
        query: Mapping[str, str] | None = params
        while url is not None:
            response = self._send("GET", resource_type, url, params=query)
            bundle = _json_body(response)
            if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
                raise EhrError(f"FHIR search {resource_type} answered without a Bundle")
            url, query = self._next_page(bundle), None
            yield _matching_resources(bundle)

    def create(self, resource: dict, if_none_exist: str | None) -> Written:
        """POST {base}/{type}; a conditional create that matched returns created=False."""
        resource_type = _resource_type(resource)
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        response = self._send(
            "POST", resource_type, self._url(resource_type), body=resource, headers=headers
        )
        written = _written(response, resource_type, created=response.status_code == 201)
        if written.id or not if_none_exist:
            return _require_id(written, resource_type)
        # Some servers answer a conditional-create match with neither body nor Location.
        return self._find_existing(resource_type, if_none_exist)

    def update(self, resource: dict, if_match: str | None) -> Written:
        """PUT {base}/{type}/{id}; if_match is a version id ("3") or an ETag (W/"3")."""
        resource_type = _resource_type(resource)
        resource_id = resource.get("id")
        if not resource_id:
            raise ValueError(f"cannot update a {resource_type} without an id")
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = etag_for(if_match)
        response = self._send(
            "PUT",
            resource_type,
            self._url(resource_type, resource_id),
            body=resource,
            headers=headers,
            conflict_possible=True,
        )
        written = _written(response, resource_type, created=response.status_code == 201)
        if written.id is None:
            written = Written(resource_id, written.version_id, written.etag, None, written.created)
        return written

    def _find_existing(self, resource_type: str, if_none_exist: str) -> Written:
        matches = self.search(resource_type, dict(parse_qsl(if_none_exist)))
        if len(matches) != 1:
            raise EhrError(
                f"FHIR conditional create {resource_type} matched, but a search found "
                f"{len(matches)} resources"
            )
        found = matches[0]
        version = (found.get("meta") or {}).get("versionId")
        return Written(found["id"], version, etag_for(version) if version else None, found, False)

    def _send(
        self,
        method: str,
        resource_type: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict | None = None,
        headers: Mapping[str, str] | None = None,
        conflict_possible: bool = False,
    ) -> requests.Response:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request_headers = {"Accept": FHIR_JSON, **(headers or {})}
        if data is not None:
            request_headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        for attempt in (1, 2):
            response = self._transmit(method, resource_type, url, params, data, request_headers)
            # An expired or revoked token: fetch a new one and try exactly once more.
            if response.status_code == 401 and attempt == 1:
                self._auth.invalidate()
                continue
            break
        if 200 <= response.status_code < 300:
            return response
        raise self._error_for(response, method, resource_type, conflict_possible)

    def _transmit(
        self,
        method: str,
        resource_type: str,
        url: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str],
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                url,
                params=params,
                data=data,
                headers={**headers, **self._auth.headers()},
                timeout=self._timeout,
                # A redirected POST would silently turn into a GET; treat redirects as errors.
                allow_redirects=False,
            )
        except TRANSPORT_FAILURES as exc:
            raise EhrTransientError(
                f"FHIR {method} {resource_type} failed: {type(exc).__name__}"
            ) from exc
        except DestinationRefused as exc:
            raise refused_destination(f"FHIR {method} {resource_type}", exc) from None

    def _error_for(
        self, response: requests.Response, method: str, resource_type: str, conflict_possible: bool
    ) -> EhrError:
        return error_for_response(
            response, f"FHIR {method} {resource_type}", self._clock(), conflict_possible
        )

    def _url(self, resource_type: str, resource_id: str | None = None) -> str:
        if not re.fullmatch(r"[A-Z][A-Za-z]+", resource_type):
            raise ValueError(f"not a FHIR resource type: {resource_type!r}")
        if resource_id is None:
            return f"{self._base_url}/{resource_type}"
        if not re.fullmatch(FHIR_ID, resource_id):
            raise ValueError(f"not a FHIR id: {resource_id!r}")
        return f"{self._base_url}/{resource_type}/{resource_id}"

    def _next_page(self, bundle: dict) -> str | None:
        for link in bundle.get("link") or []:
            if link.get("relation") == "next" and link.get("url"):
                url = link["url"]
                # Never send our credentials to another server a Bundle points at.
                if not url.startswith(self._base_url + "/") and not url.startswith(
                    self._base_url + "?"
                ):
                    raise EhrError("FHIR search next link leaves the configured base URL")
                return url
        return None


def build_gateway(ehr_config: Mapping, network: NetworkSettings = PUBLIC_ONLY) -> EhrGateway:
    """Build the gateway for a practice's (decrypted) ehr block of CONTRACT §2, calling only
    the addresses its `network` settings allow."""
    kind = ehr_config.get("type")
    if kind != "fhir-r4":
        raise ValueError(f"ehr.type must be 'fhir-r4', not {kind!r}")
    base_url = ehr_config.get("base_url")
    if not base_url:
        raise ValueError("ehr.base_url is required")
    # ehr.timeout_seconds is the read timeout; connecting keeps its own bound.
    read = ehr_config.get("timeout_seconds")
    timeout = (DEFAULT_TIMEOUT[0], read) if read else DEFAULT_TIMEOUT
    session = build_session(timeout, network=network)
    auth = build_auth(ehr_config.get("auth") or {"type": "none"}, session)
    return FhirGateway(base_url, auth, session, timeout=timeout)


def error_for_response(
    response: requests.Response, what: str, now: float, conflict_possible: bool = False
) -> EhrError:
    """Map a non-2xx answer to the error class that tells the caller what to do next."""
    status = response.status_code
    outcome = _operation_outcome(response)
    message = f"{what} answered {status}"
    detail = describe_outcome(outcome)
    if detail:
        message = f"{message}: {detail}"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        return EhrTransientError(message, retry_after)
    if status in (401, 403):
        return EhrAuthError(message, status, outcome)
    if status == 404:
        return EhrNotFound(message, status, outcome)
    if status in (409, 412) and conflict_possible:
        return EhrConflict(message, status, outcome)
    return EhrPermanentError(message, status, outcome)


def _written(response: requests.Response, resource_type: str, created: bool) -> Written:
    body = _json_body(response)
    is_resource = isinstance(body, dict) and body.get("resourceType") == resource_type
    resource = body if is_resource else None
    etag = response.headers.get("ETag")
    location_id, location_version = _parse_location(
        response.headers.get("Location") or response.headers.get("Content-Location"),
        resource_type,
    )
    resource_id = (resource or {}).get("id") or location_id
    version = (
        ((resource or {}).get("meta") or {}).get("versionId")
        or version_from_etag(etag)
        or location_version
    )
    return Written(resource_id, version, etag, resource, created)


def _require_id(written: Written, resource_type: str) -> Written:
    if not written.id:
        raise EhrError(f"FHIR create {resource_type} answered without an id or Location")
    return written


def _parse_location(location: str | None, resource_type: str) -> tuple[str | None, str | None]:
    if not location:
        return None, None
    path = urlsplit(location).path.rstrip("/")
    match = re.search(
        rf"(?:^|/){resource_type}/({FHIR_ID})(?:/_history/({FHIR_ID}))?$", path
    )
    if not match:
        return None, None
    return match.group(1), match.group(2)


def _resource_type(resource: dict) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ValueError("resource has no resourceType")
    return resource_type


def _matching_resources(bundle: dict) -> list[dict]:
    return [
        entry["resource"]
        for entry in bundle.get("entry") or []
        if isinstance(entry.get("resource"), dict)
        and (entry.get("search") or {}).get("mode", "match") == "match"
    ]


def _json_body(response: requests.Response) -> object:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _operation_outcome(response: requests.Response) -> dict | None:
    body = _json_body(response)
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None
