"""Healthie (CONTRACT §10): its GraphQL API behind a small port, and the record writer for
`ehr.type` `healthie` (a finished form answer group with the scores, a HIGH CareAlert for an
open rupture)."""
