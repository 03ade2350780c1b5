"""Bodies of the operations endpoints (CONTRACT §7), for the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields


class Health(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})


class Readiness(Schema):
    status = fields.String(required=True, metadata={"enum": ["ready", "not ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True,
                         metadata={"description": "database and broker: reachable or not"})
