"""Where a practice's outbound calls may go (CONTRACT §2, issue 12): the `network` section, and
the check of every URL and host the worker will call.

Each URL must be `https`; plain `http` is accepted only to a loopback address (the local demo
and the tests). A host written as a loopback or private address (`127.0.0.1`, `localhost`,
`10.0.0.5`) needs `network.allow_private` with a reason; a link-local or reserved one
(`169.254.169.254`, the cloud metadata service) is refused whatever the settings. Names are
resolved, and their addresses checked, when the worker calls them (`integrations/network.py`).

A section that adds an outbound URL adds its path to OUTBOUND_URLS (or OUTBOUND_HOSTS for a
bare host name); `*` stands for every item of a list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate, validates_schema

from integrations.network import host_kind, refusal
from integrations.settings import NetworkSettings
from schemas.base import StrictSchema

OUTBOUND_URLS: tuple[tuple[str, ...], ...] = (
    ("ehr", "base_url"),
    ("ehr", "auth", "token_url"),
    ("ehr", "url"),
    ("delivery", "sms", "api_base"),
    ("healthie", "api_url"),
    ("smart_app", "issuers", "*"),
    ("cds_hooks", "clients", "*", "jwks_url"),
)
OUTBOUND_HOSTS: tuple[tuple[str, ...], ...] = (("delivery", "email", "smtp_host"),)


class Network(StrictSchema):
    # JSON booleans only, as elsewhere: "yes" as text is a mistake worth naming.
    allow_private = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    reason = fields.String(validate=validate.Length(min=1, max=300))

    @validates_schema
    def _reason_given(self, data, **_kwargs):
        if data.get("allow_private") and not (data.get("reason") or "").strip():
            raise ValidationError("say why this practice may call private addresses (shown by "
                                  "`alliance practice show`)", "reason")


def destination_problems(document: Mapping[str, Any]) -> dict:
    """Marshmallow-style errors ({"ehr": {"base_url": [...]}}) for every outbound URL or host
    of a loaded document that its `network` section does not allow."""
    network = NetworkSettings.from_document(document.get("network"))
    problems: dict = {}
    for path in OUTBOUND_URLS:
        for where, url in _values(document, path):
            message = url_problem(url, network)
            if message:
                _put(problems, where, message)
    for path in OUTBOUND_HOSTS:
        for where, host in _values(document, path):
            why = refusal(host_kind(host), network)
            if why:
                _put(problems, where, f"{host} is {why}")
    return problems


def url_problem(url: str, network: NetworkSettings) -> str | None:
    """Why the worker may not call this URL, or None."""
    parts = urlsplit(url)
    kind = host_kind(parts.hostname)
    if parts.scheme != "https" and kind != "loopback":
        return "must be https (plain http only to a loopback address, for the demo and tests)"
    why = refusal(kind, network)
    return f"{parts.hostname} is {why}" if why else None


def _values(node: Any, path: tuple[str, ...], where: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if not path:
        if isinstance(node, str):
            yield where, node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for index, item in enumerate(node if isinstance(node, list) else []):
            yield from _values(item, rest, (*where, index))
    elif isinstance(node, Mapping) and node.get(head) is not None:
        yield from _values(node[head], rest, (*where, head))


def _put(problems: dict, where: tuple, message: str) -> None:
    node = problems
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(where[-1], []).append(message)
