"""SQLAlchemy Core tables. Alembic migrations under migrations/ create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from service.persistence.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _when(name: str, nullable: bool = True) -> Column:
    return Column(name, UtcDateTime(), nullable=nullable)


practices = Table(
    "practices", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    # The whole practice document, Fernet-encrypted: it holds webhook, EHR and provider secrets.
    Column("sealed_document", Text, nullable=False),
    _when("created_at", False),
    _when("updated_at", False),
)

webhook_events = Table(
    "webhook_events", metadata,
    Column("id", String(36), primary_key=True),
    Column("practice_id", String(64), ForeignKey("practices.id"), nullable=False),
    Column("source", String(16), nullable=False),            # native | fhir
    Column("delivery_id", String(200), nullable=False),      # webhook-id, or a hash of the body
    Column("event_type", String(100), nullable=False),
    Column("session_id", String(200)),
    Column("patient_id", String(200)),
    # accepted → survey-scheduled | ignored | duplicate-session | failed
    Column("outcome", String(32), nullable=False),
    Column("reason", String(300)),                           # plain words, no personal data
    # service/intake/payload.py's document, sealed with the client-data key (it may hold the
    # client's contact details); `has_contact` says whether it does, so retention and opt-out
    # find the rows to strip without opening every payload.
    Column("sealed_payload", Text, nullable=False),
    Column("has_contact", Boolean, nullable=False, default=False),
    _when("received_at", False),
    UniqueConstraint("practice_id", "source", "delivery_id", name="uq_webhook_delivery"),
)

session_keys = Table(
    "session_keys", metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("key", String(250), primary_key=True),            # "session:enc-1001", "Encounter/e1", …
    Column("event_id", String(36), nullable=False),
)

clients = Table(
    "clients", metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("patient_id", String(200), primary_key=True),
    # Contact details, sealed with the client-data key (service/crypto.py ClientVault), and the
    # keyed hash of the phone's E.164 form that an SMS STOP or START finds the client by. The
    # hash outlives the contact details of a client who opted out: a START must still find them.
    Column("sealed_phone", Text),
    Column("sealed_email", Text),
    Column("phone_hash", String(64)),
    Column("locale", String(16)),
    Column("sessions_completed", Integer, nullable=False, default=0),
    _when("last_session_at"),                                # contact retention counts from here
    _when("opted_out_at"),
    Column("opted_out_by", String(8)),                        # sms | link: an SMS STOP wins
    _when("updated_at", False),
    Index("ix_clients_phone_hash", "practice_id", "phone_hash"),
)

surveys = Table(
    "surveys", metadata,
    Column("id", String(36), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("patient_id", String(200), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("instrument_id", String(100), nullable=False),
    # scheduled → sent → answered | expired | closed ; or skipped | failed
    Column("status", String(16), nullable=False),
    Column("channel", String(16)),
    Column("status_reason", String(300)),
    Column("session_ended_at", UtcDateTime()),
    _when("created_at", False),
    _when("send_at", False),
    _when("sent_at"),
    _when("reminded_at"),
    _when("expires_at"),
    _when("answered_at"),
    UniqueConstraint("practice_id", "session_id", name="uq_survey_session"),
    Index("ix_surveys_client", "practice_id", "patient_id", "created_at"),
)

responses = Table(
    "responses", metadata,
    Column("id", String(36), primary_key=True),
    Column("survey_id", String(36), ForeignKey("surveys.id"), nullable=False, unique=True),
    # The whole answers document (free text included), sealed with the client-data key. The
    # scores beside it stay readable: the rupture rules and the trend view work from them.
    Column("sealed_answers", Text, nullable=False),
    Column("total", Float, nullable=False),
    Column("subscales", JSON, nullable=False),
    Column("pomp", Float, nullable=False),
    _when("submitted_at", False),
)

assessments = Table(
    "assessments", metadata,
    Column("survey_id", String(36), ForeignKey("surveys.id"), primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("flag_text", Text),
    Column("interpretation", String(16)),
    Column("episode_id", String(36)),
    _when("assessed_at", False),
)

rupture_episodes = Table(
    "rupture_episodes", metadata,
    Column("id", String(36), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("patient_id", String(200), nullable=False),
    Column("status", String(16), nullable=False),            # open | resolved
    Column("flag_id", String(200)),                          # the Flag's id in the EHR
    Column("flag_version", String(64)),
    Column("flag_text", Text),
    Column("opened_by_survey_id", String(36), nullable=False),
    Column("closed_by_survey_id", String(36)),
    _when("opened_at", False),
    _when("closed_at"),
    Column("document_id", String(200)),                      # the latest DocumentReference
    Column("document_version", String(64)),
    Column("document_number", Integer, nullable=False, server_default="0"),
    Index("ix_episodes_client", "practice_id", "patient_id", "status"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("practice_id", String(64)),
    Column("payload", JSON, nullable=False),
    # pending → published → done ; or dead (dead-letter store) → dropped
    Column("status", String(16), nullable=False),
    Column("dedupe_key", String(250), unique=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", JSON),
    _when("available_at", False),
    _when("published_at"),
    _when("created_at", False),
    _when("finished_at"),
    Index("ix_outbox_due", "status", "available_at"),
)

# FHIR polling (ehr.poll): where each practice's search resumes. One row per practice and
# polled resource type; the search starts again a little before `cursor` (the overlap).
poll_cursors = Table(
    "poll_cursors", metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("resource", String(32), primary_key=True),      # Encounter | Appointment
    _when("cursor"),                                         # newest meta.lastUpdated seen
    _when("polled_at"),                                      # last search that finished
    Column("failures", Integer, nullable=False, default=0),  # in a row: 429/5xx back off
    Column("last_error", String(300)),                       # plain words, no personal data
)

# --- practice API keys (the alerts API; `alliance practice api-key create|revoke`) ----------

practice_api_keys = Table(
    "practice_api_keys", metadata,
    Column("id", String(32), primary_key=True),              # the key id, the key's visible prefix
    Column("practice_id", String(64), ForeignKey("practices.id"), nullable=False),
    # SHA-256 of the whole key, hex: the key itself is shown once and never stored.
    Column("digest", String(64), nullable=False),
    Column("label", String(200)),
    _when("created_at", False),
    _when("revoked_at"),
    Index("ix_api_keys_practice", "practice_id"),
)

# The SMART trend app (CONTRACT §8.2). Both tables are keyed by the SHA-256 of a random value
# the browser holds (the OAuth `state`, the session cookie), so a database read leaks no usable
# handle. Embedded browsers share sessionStorage between app instances, so all state lives here.
smart_launches = Table(
    "smart_launches", metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("browser_hash", String(64), nullable=False),      # the browser cookie it is bound to
    Column("iss", String(500), nullable=False),
    Column("launch", String(500)),                            # None for a standalone launch
    Column("sealed_verifier", Text, nullable=False),          # PKCE verifier, Fernet-encrypted
    Column("nonce", String(64), nullable=False),
    _when("created_at", False),
    _when("expires_at", False),
    _when("used_at"),
    Index("ix_smart_launches_expiry", "expires_at"),
)

smart_sessions = Table(
    "smart_sessions", metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("patient_id", String(200), nullable=False),        # the launch context's patient
    Column("fhir_user", String(500)),                         # from a verified id_token
    Column("iss", String(500), nullable=False),
    _when("created_at", False),
    _when("expires_at", False),
    Index("ix_smart_sessions_expiry", "expires_at"),
)

# --- clinicians in the EHR: CDS Hooks (CONTRACT §8.1) and actions on alerts (§9.1) ------------

# What a clinician is shown for one client, recomputed from the stored assessments each time a
# survey is assessed (service/clinician/clinician_state.py): a CDS hook reads one row.
clinician_states = Table(
    "clinician_states", metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("patient_id", String(200), primary_key=True),
    Column("instrument_id", String(100)),                    # of the last returned survey
    Column("returned_count", Integer, nullable=False),
    Column("last_total", Float),
    Column("last_session_at", UtcDateTime()),
    Column("previous_total", Float),                         # the survey before, same instrument
    Column("last_decision", String(16)),
    Column("last_reasons", JSON, nullable=False),
    # The open rupture: its episode, stage (rupture | unresolved) and the card shown for it.
    Column("episode_id", String(36)),
    Column("stage", String(16)),
    Column("card_uuid", String(36)),
    _when("stage_since"),                                    # an acknowledgment counts from here
    Column("stage_session_at", UtcDateTime()),
    Column("stage_reasons", JSON),
    Column("opened_session_at", UtcDateTime()),
    _when("updated_at", False),
    Index("ix_clinician_states_card", "practice_id", "card_uuid"),
)

# Every action taken on an alert: who, what and when, per rupture episode (docs/alerts.md).
# `note` is sealed (free text); `until` is a snooze's end.
alert_actions = Table(
    "alert_actions", metadata,
    Column("id", String(36), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("episode_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),            # acknowledge | snooze | …
    Column("actor", String(500), nullable=False),            # "Practitioner/…", "cds-client:{iss}"
    Column("source", String(32), nullable=False),            # cds-feedback | smart-view | …
    Column("note", Text),                                    # sealed with the client-data key
    _when("at", False),
    Column("dedupe_key", String(100), unique=True),          # a repeated delivery adds nothing
    _when("until"),                                          # a snooze: hidden until then
    Index("ix_alert_actions_episode", "episode_id", "action", "at"),
)

# CDS Hooks feedback as received (telemetry; an `acknowledged` override also adds an action).
cds_feedback = Table(
    "cds_feedback", metadata,
    Column("id", String(36), primary_key=True),
    Column("practice_id", String(64), nullable=False),
    Column("service_id", String(100), nullable=False),
    Column("client_iss", String(500), nullable=False),
    Column("card_uuid", String(100), nullable=False),
    Column("outcome", String(16), nullable=False),           # accepted | overridden
    Column("reason_system", String(500)),
    Column("reason_code", String(200)),
    Column("comment", Text),                                 # sealed (client-data key): free text
    Column("accepted_suggestions", JSON),
    _when("outcome_at", False),
    _when("received_at", False),
    Column("dedupe_key", String(64), nullable=False, unique=True),
)

# JWT ids seen on CDS Hooks requests, until the token expires: a replay is refused in every web
# process. The key is a hash of issuer and jti (both unbounded strings from the token).
cds_token_ids = Table(
    "cds_token_ids", metadata,
    Column("key", String(64), primary_key=True),
    _when("expires_at", False),
    Index("ix_cds_token_ids_expiry", "expires_at"),
)

# Issue 12 (security review). Inbound SMS already acted on, by Twilio's MessageSid: a replayed
# signed STOP or START changes nothing. Ids only: no number, no text.
inbound_sms = Table(
    "inbound_sms", metadata,
    Column("practice_id", String(64), primary_key=True),
    Column("message_sid", String(64), primary_key=True),
    _when("received_at", False),
)

# A survey message handed to a provider, committed before the call: a rerun that finds it
# asks the provider whether the message went out before sending it again. Deleted with the
# job's completion.
sends_in_flight = Table(
    "sends_in_flight", metadata,
    Column("survey_id", String(36), primary_key=True),
    Column("kind", String(16), primary_key=True),             # invitation | reminder
    Column("channel", String(16), primary_key=True),
    _when("started_at", False),
)

# --- who read a client's data (CONTRACT §11): ids only, never the data itself --------------

audit_log = Table(
    "audit_log", metadata,
    Column("id", String(36), primary_key=True),
    _when("at", False),
    Column("practice_id", String(64), nullable=False),
    Column("patient_id", String(200)),                       # whose data; None: no one client
    # Who: "Practitioner/123" (a SMART id_token's fhirUser), "api-key:{key id}",
    # "cds-client:{iss}", "cli:{operating-system user}".
    Column("actor", String(500), nullable=False),
    Column("channel", String(32), nullable=False),           # smart | alerts-api | cds | cli
    Column("action", String(32), nullable=False),            # read | export | erase | write
    Column("what", String(100), nullable=False),             # e.g. "trend view", "alert"
    Column("ref", String(200)),                              # the id read (an episode, …)
    Index("ix_audit_log_practice_at", "practice_id", "at"),
    Index("ix_audit_log_patient", "practice_id", "patient_id"),
)

# --- Tasks written for rupture episodes (CONTRACT §9.1, §9.2) ---------------------------------

# The Tasks the service wrote for an episode, by kind: `alert` (alerts.write `task`, completed
# on repair) and `escalation` (to alerts.escalate_to, completed on acknowledgment or repair).
# Ids of the EHR only; erased, exported and kept with the episode.
episode_tasks = Table(
    "episode_tasks", metadata,
    Column("episode_id", String(36), primary_key=True),
    Column("kind", String(16), primary_key=True),            # alert | escalation
    Column("practice_id", String(64), nullable=False),
    Column("task_id", String(200), nullable=False),          # the Task's id in the EHR
    Column("task_version", String(64)),
    Column("status", String(16), nullable=False),            # requested | completed
    _when("unresolved_since"),                               # escalation: acks count from here
    _when("created_at", False),
    _when("completed_at"),
    _when("emailed_at"),                                     # the supervisor's e-mail was sent
    Index("ix_episode_tasks_status", "status", "kind"),
)
