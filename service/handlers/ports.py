"""What the handlers need from the outside world, and nothing more.

Handlers are written against this protocol, not against the composition root:
`service/bootstrap.Services` provides it in production, and tests pass the same object wired
with fakes (an in-memory EHR, recording channels, a clock they move by hand).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from integrations.delivery.port import Channel
from integrations.ehr.port import EhrGateway
from integrations.settings import ChannelSettings, EhrSettings
from service.config import Settings
from service.crypto import ClientVault, LinkSigner, SecretBox
from service.domain.instruments import Instrument
from service.practices import Practice

Clock = Callable[[], datetime]


class Ports(Protocol):
    settings: Settings  # retry limits, the public URL, the secret the forms are signed with
    engine: Engine  # one unit of work per `with engine.begin() as conn:`
    clock: Clock
    box: SecretBox  # opens the stored practice documents
    vault: ClientVault  # seals and opens clients' contact details, answers and free text
    signer: LinkSigner  # survey links
    ehr_for: Callable[[EhrSettings], EhrGateway]  # reads sessions and patients
    channel_for: Callable[[str, ChannelSettings], Channel]
    healthie_for: Callable[[Mapping[str, Any]], Any]  # Healthie's GraphQL API (its section)

    def practice(self, practice_id: str) -> Practice | None:
        """A practice as the doors look it up on every request (cached for a few seconds)."""
        ...

    def instruments(self) -> Mapping[str, Instrument]:
        """The instrument catalogue."""
        ...

    def writer_for(self, ehr: EhrSettings) -> Any:
        """Where scores and flags are written: FHIR or a signed webhook."""
        ...

    def survey_link(self, token: str) -> str:
        """The client's link to a survey."""
        ...
