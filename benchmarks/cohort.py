"""Synthetic-cohort benchmark of the rupture rules against the simple peer rule (issue #4, Measure).

    .venv/bin/python benchmarks/cohort.py                      # generate, replay, print the table
    .venv/bin/python benchmarks/cohort.py --write cohort.jsonl # also write the replay input
    alliance ruptures replay cohort.jsonl > decisions.jsonl
    .venv/bin/python benchmarks/cohort.py --decisions decisions.jsonl  # score the CLI's output

Everything is drawn from one seeded generator, so the same seed gives the same figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.cli_science import replay  # noqa: E402
from service.domain import RuptureRules, builtin_instruments  # noqa: E402

INSTRUMENT = "brief-alliance-check"
SCORE_ITEMS = ("bond", "goals", "approach", "overall")
SESSIONS = 12
CLIENTS_PER_CLASS = 200
DEFAULT_SEED = 20261126
MISSING_RATE = 0.10  # surveys not returned, at random, outside the injected events
SLIGHT_TENSION_RATE = 0.12  # sessions where a client reports slight tension (strength 1–2)
STABLE_CLASSES = ("ceiling-stable", "noisy-stable")
REPAIR_CLASSES = ("v-dip", "tension-high")
NON_REPAIR_CLASSES = ("lasting-drop", "silent-after-low")
CLASSES = STABLE_CLASSES + REPAIR_CLASSES + NON_REPAIR_CLASSES
PEER_CUTOFF = 36
DECISION_ORDER = ("none", "check-in", "watch", "rupture", "unresolved", "repaired")
REPAIR_WINDOW = RuptureRules().repair_window


@dataclass
class Client:
    """One synthetic client: class, answers per session (None = not returned), event session."""

    client_id: str
    kind: str
    sessions: list[dict | None] = field(default_factory=list)
    event: int | None = None  # 0-based index of the injected rupture


# --- generation -------------------------------------------------------------------------------


def generate(seed: int) -> list[Client]:
    """The whole cohort, deterministic for a seed."""
    rng = random.Random(seed)
    clients = []
    for kind in CLASSES:
        for number in range(CLIENTS_PER_CLASS):
            clients.append(_client(rng, f"{kind}-{number:03d}", kind))
    return clients


def _client(rng: random.Random, client_id: str, kind: str) -> Client:
    level = _level_for(rng, kind)
    client = Client(client_id, kind)
    if kind in STABLE_CLASSES:
        client.sessions = [_maybe_missing(rng, _answers(rng, level)) for _ in range(SESSIONS)]
        return client
    client.event = rng.randint(4, SESSIONS - REPAIR_WINDOW - 1)
    drop = _drop(rng)
    dip_length = 1 if rng.random() < 0.7 else 2
    for index in range(SESSIONS):
        client.sessions.append(
            _event_session(rng, kind, level, drop, index, client.event, dip_length)
        )
    return client


def _level_for(rng: random.Random, kind: str) -> dict:
    ceiling = kind == "ceiling-stable" or (kind != "noisy-stable" and rng.random() < 0.5)
    if ceiling:
        # Alliance ratings bunch at the top: latent means at or above the maximum, little noise.
        means = {item: rng.uniform(9.2, 10.6) for item in SCORE_ITEMS}
        return {"means": means, "shared_sd": 0.3, "item_sd": 0.35}
    centre = rng.uniform(5.5, 8.5)
    means = {item: centre + rng.uniform(-0.7, 0.7) for item in SCORE_ITEMS}
    return {"means": means, "shared_sd": 0.6, "item_sd": 0.6}


def _drop(rng: random.Random) -> dict:
    if rng.random() < 0.5:  # a global fall: every item 2–4 points, 8–16 on the total
        return {item: rng.uniform(2, 4) for item in SCORE_ITEMS}
    focal = rng.choice(SCORE_ITEMS[:3])  # one component (bond, goals or tasks) falls 4–6
    return {
        item: rng.uniform(4, 6) if item == focal else rng.uniform(0, 1.5) for item in SCORE_ITEMS
    }


def _event_session(
    rng: random.Random, kind: str, level: dict, drop: dict, index: int, event: int, dip_length: int
) -> dict | None:
    if index < event:
        return _maybe_missing(rng, _answers(rng, level))
    if kind == "tension-high":
        if index == event:
            return _answers(rng, level, tension=rng.randint(3, 5))
        return _maybe_missing(rng, _answers(rng, level))
    if kind == "silent-after-low" and index > event:
        return None
    dipped = kind != "v-dip" or index < event + dip_length
    answers = _answers(rng, level, drop if dipped else None, slight_tension=not dipped)
    return answers if index == event else _maybe_missing(rng, answers)


def _answers(
    rng: random.Random,
    level: dict,
    drop: dict | None = None,
    tension: int | None = None,
    slight_tension: bool = True,
) -> dict:
    shared = rng.gauss(0, level["shared_sd"])
    answers = {}
    for item in SCORE_ITEMS:
        value = (
            level["means"][item]
            - (drop or {}).get(item, 0)
            + shared
            + rng.gauss(0, level["item_sd"])
        )
        answers[item] = max(0, min(10, round(value)))
    if tension is None and slight_tension and rng.random() < SLIGHT_TENSION_RATE:
        tension = rng.choice((1, 1, 2))
    if tension is not None:
        answers["tension"] = True
        answers["tension_intensity"] = tension
    return answers


def _maybe_missing(rng: random.Random, answers: dict) -> dict | None:
    return None if rng.random() < MISSING_RATE else answers


def as_jsonl(clients: list[Client]) -> list[str]:
    """The replay input: one JSON line per session, in order per client."""
    lines = []
    for client in clients:
        for index, answers in enumerate(client.sessions):
            record = {
                "client_id": client.client_id,
                "session_id": f"{client.client_id}-s{index + 1:02d}",
                "ended_at": f"2026-{1 + index // 4:02d}-{1 + 7 * (index % 4):02d}T15:00:00+00:00",
                "instrument": INSTRUMENT,
                "answers": answers,
            }
            lines.append(json.dumps(record))
    return lines


# --- the two rule sets ------------------------------------------------------------------------


def our_decisions(lines: list[str]) -> dict[str, list[str]]:
    """Decisions of the engine, through the same replay function the CLI uses."""
    catalogue = builtin_instruments()
    decisions: dict[str, list[str]] = {}
    for outcome in replay(lines, catalogue, RuptureRules()):
        if outcome.error is not None:
            raise SystemExit(f"line {outcome.line_number} refused: {outcome.error}")
        decisions.setdefault(outcome.output["client_id"], []).append(outcome.output["decision"])
    return decisions


def read_decisions(path: Path) -> dict[str, list[str]]:
    """Decisions from a file written by `alliance ruptures replay`."""
    decisions: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            output = json.loads(line)
            decisions.setdefault(output["client_id"], []).append(output["decision"])
    return decisions


def peer_flags(client: Client) -> list[bool]:
    """The simple peer rule: total below 36, or any fall from the previous returned survey."""
    flags, previous = [], None
    for answers in client.sessions:
        if answers is None:
            flags.append(False)
            continue
        total = sum(answers[item] for item in SCORE_ITEMS)
        flags.append(total < PEER_CUTOFF or (previous is not None and total < previous))
        previous = total
    return flags


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts behind one column of the results table."""

    events: int = 0
    detected: int = 0
    stable_sessions: int = 0
    stable_flagged: int = 0
    stable_alerted: int = 0
    repair_cases: int = 0
    repair_seen: int = 0
    non_repair_cases: int = 0
    non_repair_seen: int = 0
    flags_by_kind: dict = field(default_factory=dict)
    stable_decisions: dict = field(default_factory=dict)
    sessions_by_kind: dict = field(default_factory=dict)


def measure_ours(clients: list[Client], decisions: dict[str, list[str]]) -> Tally:
    tally = Tally()
    for client in clients:
        made = decisions[client.client_id]
        flagged = [d in ("rupture", "unresolved") for d in made]
        alerted = [d != "none" for d in made]
        _count_stable(tally, client, flagged, alerted)
        _count_kind(tally, client, flagged)
        _count_stable_decisions(tally, client, made)
        if client.event is None:
            continue
        tally.events += 1
        tally.detected += made[client.event] == "rupture"
        window = made[client.event + 1 : client.event + 1 + REPAIR_WINDOW]
        if client.kind in REPAIR_CLASSES:
            tally.repair_cases += 1
            tally.repair_seen += "repaired" in window and "unresolved" not in window
        else:
            tally.non_repair_cases += 1
            tally.non_repair_seen += "unresolved" in window and "repaired" not in window
    return tally


def measure_peer(clients: list[Client]) -> Tally:
    tally = Tally()
    for client in clients:
        flagged = peer_flags(client)
        _count_stable(tally, client, flagged, flagged)
        _count_kind(tally, client, flagged)
        if client.event is not None:
            tally.events += 1
            tally.detected += flagged[client.event]
    return tally


def _count_stable(tally: Tally, client: Client, flagged: list[bool], alerted: list[bool]) -> None:
    # Sessions before an injected event are stable sessions too: flagging them is flagging early.
    end = SESSIONS if client.event is None else client.event
    for index in range(end):
        if client.sessions[index] is None:
            continue
        tally.stable_sessions += 1
        tally.stable_flagged += flagged[index]
        tally.stable_alerted += alerted[index]


def _count_stable_decisions(tally: Tally, client: Client, made: list[str]) -> None:
    if client.kind not in STABLE_CLASSES:
        return
    counts = tally.stable_decisions.setdefault(client.kind, {})
    for answers, decision in zip(client.sessions, made, strict=True):
        if answers is not None:
            counts[decision] = counts.get(decision, 0) + 1


def _count_kind(tally: Tally, client: Client, flagged: list[bool]) -> None:
    returned = sum(answers is not None for answers in client.sessions)
    tally.sessions_by_kind[client.kind] = tally.sessions_by_kind.get(client.kind, 0) + returned
    tally.flags_by_kind[client.kind] = tally.flags_by_kind.get(client.kind, 0) + sum(flagged)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.3f} ({part}/{whole})" if whole else "—"


def table(ours: Tally, peer: Tally, seed: int) -> str:
    """The results as a Markdown table."""
    rows = [
        (
            "Sensitivity: injected ruptures flagged at the event",
            _share(ours.detected, ours.events),
            _share(peer.detected, peer.events),
            "≥ 0.90",
        ),
        (
            "Stable clients' sessions flagged (EHR Flag)",
            _share(ours.stable_flagged, ours.stable_sessions),
            _share(peer.stable_flagged, peer.stable_sessions),
            "≤ 0.02",
        ),
        (
            "Stable sessions with any decision but `none`",
            _share(ours.stable_alerted, ours.stable_sessions),
            "(same as above)",
            "—",
        ),
        (
            "Repair recognised (`repaired` within the window)",
            _share(ours.repair_seen, ours.repair_cases),
            "not provided",
            "≥ 0.90",
        ),
        (
            "Non-repair recognised (`unresolved` at the window's end)",
            _share(ours.non_repair_seen, ours.non_repair_cases),
            "not provided",
            "≥ 0.90",
        ),
    ]
    lines = [
        f"Cohort: seed {seed}, {CLIENTS_PER_CLASS} clients x {len(CLASSES)} classes, "
        f"{SESSIONS} sessions each, {MISSING_RATE:.0%} surveys not returned at random, "
        f"slight tension in {SLIGHT_TENSION_RATE:.0%} of sessions.",
        "",
        "| Measure | Our rules | Peer rule (total < 36 or any 1-point drop) | Target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {mine} | {theirs} | {target} |" for name, mine, theirs, target in rows]
    lines += [
        "",
        "| Class | returned surveys | flagged, our rules | flagged, peer rule |",
        "|---|---|---|---|",
    ]
    for kind in CLASSES:
        sessions = ours.sessions_by_kind[kind]
        lines.append(
            f"| {kind} | {sessions} | {_share(ours.flags_by_kind[kind], sessions)} | "
            f"{_share(peer.flags_by_kind[kind], sessions)} |"
        )
    lines += [
        "",
        "| Stable class | " + " | ".join(DECISION_ORDER) + " |",
        "|---|" + "---|" * len(DECISION_ORDER),
    ]
    for kind, counts in ours.stable_decisions.items():
        whole = sum(counts.values())
        cells = " | ".join(f"{counts.get(d, 0) / whole:.3f}" for d in DECISION_ORDER)
        lines.append(f"| {kind} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--write", type=Path, help="write the cohort as replay input (JSON lines)")
    parser.add_argument(
        "--decisions", type=Path, help="score this `ruptures replay` output instead"
    )
    args = parser.parse_args(argv)
    clients = generate(args.seed)
    lines = as_jsonl(clients)
    if args.write:
        args.write.write_text("\n".join(lines) + "\n", "utf-8")
    decisions = read_decisions(args.decisions) if args.decisions else our_decisions(lines)
    print(table(measure_ours(clients, decisions), measure_peer(clients), args.seed))


if __name__ == "__main__":
    main()
