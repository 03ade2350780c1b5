"""EHR integration: the FHIR R4 gateway, its authentication, and the alliance record writer."""

from __future__ import annotations

from collections.abc import Mapping

from integrations.ehr.fhir_client import build_gateway
from integrations.ehr.resources import IdentifierSystems
from integrations.ehr.webhook_sink import WebhookRecordSink
from integrations.ehr.writer import AllianceRecordWriter
from integrations.settings import PUBLIC_ONLY, NetworkSettings


def build_record_writer(ehr_config: Mapping, network: NetworkSettings = PUBLIC_ONLY
                        ) -> AllianceRecordWriter | WebhookRecordSink:
    """The write-back for a practice's ehr block: FHIR R4, or signed webhooks (type webhook),
    calling only the addresses `network` allows."""
    if ehr_config.get("type") == "webhook":
        missing = [name for name in ("url", "secret") if not ehr_config.get(name)]
        if missing:
            raise ValueError(f"ehr (webhook) is missing: {', '.join(missing)}")
        return WebhookRecordSink(ehr_config["url"], ehr_config["secret"], network=network)
    systems = IdentifierSystems.from_settings(ehr_config.get("identifier_systems"))
    return AllianceRecordWriter(build_gateway(ehr_config, network), systems)
