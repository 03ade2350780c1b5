"""`alliance instruments …` and `alliance ruptures …` through click's CliRunner."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from service.cli_science import register
from service.domain import builtin_instruments

PRACTICE_RULES = {"northside": {"repair_window": 1}, "broken": {"repair_window": 9}}


def make_cli(lookup=None, folder=None) -> click.Group:
    @click.group()
    def cli() -> None:
        """alliance"""

    register(cli, practice_rules_lookup=lookup, instruments_dir=lambda: folder)
    return cli


@pytest.fixture(autouse=True)
def instruments_dir(tmp_path):
    global FOLDER
    FOLDER = tmp_path / "instruments"
    return FOLDER


FOLDER = None  # the test's instruments folder (Settings.instruments_dir in `alliance`)


def invoke(*args, input=None, lookup=None):
    return CliRunner().invoke(make_cli(lookup, FOLDER), list(args), input=input)


def line(client="c1", session="s1", answers=None, **extra) -> str:
    return json.dumps({"client_id": client, "session_id": session, "answers": answers, **extra})


def a(bond=9, goals=9, approach=9, overall=9) -> dict:
    return {"bond": bond, "goals": goals, "approach": approach, "overall": overall}


# --- instruments ------------------------------------------------------------------------------


def test_list_names_each_instrument_and_whether_it_can_be_sent():
    result = invoke("instruments", "list")

    assert result.exit_code == 0
    rows = {row.split("\t")[0]: row.split("\t")[2] for row in result.output.splitlines()}
    assert rows == {
        "brief-alliance-check": "sendable",
        "srs-style": "profile (needs licensed wording)",
        "wai-sr": "profile (needs licensed wording)",
    }


def test_show_prints_the_survey_item_json_and_scoring():
    result = invoke("instruments", "show", "brief-alliance-check")

    shown = json.loads(result.output)
    assert shown["items"] == builtin_instruments()["brief-alliance-check"].public_items()
    assert shown["scoring"]["subscales"]["bond"]["max"] == 10


def test_show_refuses_an_unknown_instrument():
    result = invoke("instruments", "show", "phq-9")

    assert result.exit_code == 1
    assert (
        "unknown instrument 'phq-9' (known: brief-alliance-check, srs-style, wai-sr)"
        in result.output
    )


def wording_file(tmp_path, **changes):
    wording = {
        "instrument": "srs-style",
        "licence": "Group licence 2026-17, Northside Counseling",
        "items": {
            link: {"text": f"Licensed line {n}", "lowLabel": "low", "highLabel": "high"}
            for n, link in enumerate(
                ("relationship", "goals_topics", "approach_method", "overall"), 1
            )
        },
    }
    wording.update(changes)
    path = tmp_path / "srs-wording.json"
    path.write_text(json.dumps(wording), "utf-8")
    return path


def test_load_stores_licensed_wording_and_makes_the_profile_sendable(tmp_path, instruments_dir):
    result = invoke("instruments", "load", str(wording_file(tmp_path)))

    assert result.exit_code == 0, result.output
    assert (instruments_dir / "srs-style.json").exists()
    assert "srs-style\t1.0.0\tsendable" in invoke("instruments", "list").output
    shown = json.loads(invoke("instruments", "show", "srs-style").output)
    assert shown["items"][0]["text"] == "Licensed line 1"


def test_loading_wording_twice_replaces_it(tmp_path):
    invoke("instruments", "load", str(wording_file(tmp_path)))
    path = wording_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["items"]["relationship"]["text"] = "Second version"
    path.write_text(json.dumps(doc))

    assert invoke("instruments", "load", str(path)).exit_code == 0
    assert (
        json.loads(invoke("instruments", "show", "srs-style").output)["items"][0]["text"]
        == "Second version"
    )


def test_load_refuses_wording_that_does_not_match_the_profile(tmp_path, instruments_dir):
    path = wording_file(tmp_path, items={"relationship": {"text": "only one"}})

    result = invoke("instruments", "load", str(path))

    assert result.exit_code == 1
    assert "items.goals_topics: missing" in result.output
    assert not instruments_dir.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        (
            json.dumps({"instrument": "brief-alliance-check", "items": {}}),
            "is not a scoring profile",
        ),
        (json.dumps({"items": {}}), "instrument: required"),
        (json.dumps(builtin_instruments()["brief-alliance-check"].document), "cannot be replaced"),
    ],
)
def test_load_refuses_files_it_cannot_use(tmp_path, content, message):
    path = tmp_path / "file.json"
    path.write_text(content, "utf-8")

    result = invoke("instruments", "load", str(path))

    assert result.exit_code == 1
    assert message in result.output


def test_a_broken_file_in_the_instruments_directory_is_reported(instruments_dir):
    instruments_dir.mkdir()
    (instruments_dir / "bad.json").write_text("[]", "utf-8")

    result = invoke("instruments", "list")

    assert result.exit_code == 1
    assert "broken instrument file" in result.output and "bad.json" in result.output


# --- ruptures replay --------------------------------------------------------------------------


def test_replay_prints_one_line_per_session():
    history = "\n".join(
        [line(session=f"s{n}", answers=a()) for n in range(1, 4)]
        + [line(session="s4", answers=a(5))]
    )

    result = invoke("ruptures", "replay", "-", input=history)

    assert result.exit_code == 0
    outputs = [json.loads(row) for row in result.output.splitlines()]
    assert [o["decision"] for o in outputs] == ["none", "none", "none", "rupture"]
    assert outputs[0] == {
        "client_id": "c1",
        "session_id": "s1",
        "scores": {"total": 36, "subscales": {"bond": 9, "goals": 9, "tasks": 9}},
        "decision": "none",
        "reasons": [],
    }
    assert "bond fell from 9 to 5" in outputs[3]["reasons"][0]


def test_replay_reads_a_file_and_a_survey_not_returned(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(line(answers=a(9, 9, 9, 8)) + "\n\n" + line(session="s2", answers=None) + "\n")

    result = invoke("ruptures", "replay", str(path))

    outputs = [json.loads(row) for row in result.output.splitlines()]
    assert [(o["scores"] is None, o["decision"]) for o in outputs] == [
        (False, "watch"),
        (True, "watch"),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: must be a JSON object"),
        (json.dumps({"session_id": "s2", "answers": None}), "line 2: client_id: required"),
        (json.dumps({"client_id": "c1", "session_id": "s2"}), "line 2: answers: required"),
        (
            line(session="s2", answers=a(), instrument="phq-9"),
            "line 2: instrument: unknown instrument 'phq-9'",
        ),
        (
            line(session="s2", answers={"bond": 11}),
            "line 2: answers: approach: required; bond: must be a whole",
        ),
        (
            line(session="s2", answers=a(), ended_at="yesterday"),
            "line 2: ended_at: must be an ISO 8601",
        ),
    ],
)
def test_a_malformed_line_is_reported_skipped_and_fails_the_run(bad, message):
    history = "\n".join([line(answers=a()), bad, line(session="s3", answers=a())])

    result = CliRunner().invoke(make_cli(), ["ruptures", "replay", "-"], input=history)

    assert result.exit_code == 1
    assert message in result.stderr
    assert [json.loads(row)["session_id"] for row in result.stdout.splitlines()] == ["s1", "s3"]


def test_replay_accepts_timestamps_and_profiles_without_wording():
    wai = {f"wai{n}": 4 for n in range(1, 13)}
    history = line(answers=wai, instrument="wai-sr", ended_at="2026-11-26T15:00:00Z")

    result = invoke("ruptures", "replay", "-", input=history)

    assert result.exit_code == 0
    assert json.loads(result.output)["scores"]["total"] == 48


RUPTURE_THEN_LOW = "\n".join(
    [line(session=f"s{n}", answers=a()) for n in range(1, 5)]
    + [line(session="s5", answers=a(8, 8, 8, 7)), line(session="s6", answers=a(8, 8, 8, 7))]
)


def test_practice_overrides_change_the_decisions():
    default = invoke("ruptures", "replay", "-", input=RUPTURE_THEN_LOW)
    practice = invoke(
        "ruptures",
        "replay",
        "--practice",
        "northside",
        "-",
        input=RUPTURE_THEN_LOW,
        lookup=PRACTICE_RULES.__getitem__,
    )

    assert json.loads(default.output.splitlines()[-1])["decision"] == "watch"
    assert json.loads(practice.output.splitlines()[-1])["decision"] == "unresolved"


@pytest.mark.parametrize(
    ("practice", "lookup", "message"),
    [
        ("northside", None, "--practice is not available here"),
        ("elsewhere", PRACTICE_RULES.__getitem__, "unknown practice 'elsewhere'"),
        (
            "broken",
            PRACTICE_RULES.__getitem__,
            "practice 'broken' has invalid rupture rules: repair_window",
        ),
    ],
)
def test_a_practice_whose_rules_cannot_be_used_is_refused(practice, lookup, message):
    result = invoke(
        "ruptures", "replay", "--practice", practice, "-", input=RUPTURE_THEN_LOW, lookup=lookup
    )

    assert result.exit_code == 1
    assert message in result.output


def test_rules_prints_the_thresholds_in_force():
    default = json.loads(invoke("ruptures", "rules").output)
    practice = json.loads(
        invoke(
            "ruptures", "rules", "--practice", "northside", lookup=PRACTICE_RULES.__getitem__
        ).output
    )

    assert (default["repair_window"], default["rupture_sd"]) == (3, 2.0)
    assert practice["repair_window"] == 1
