"""Properties of scoring and rupture detection that must hold for any answers."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from service.cli_science import replay
from service.domain import (
    RuptureRules,
    SessionObservation,
    assess_series,
    builtin_instruments,
    score,
)

CATALOGUE = builtin_instruments()
BRIEF = CATALOGUE["brief-alliance-check"]


def answers_for(instrument):
    """Valid answers for the score items of an instrument (plus tension for the brief one)."""
    fields = {}
    for item in instrument.score_items:
        if item.type == "integer":
            fields[item.link_id] = st.integers(int(item.min), int(item.max))
        else:
            fields[item.link_id] = st.floats(item.min, item.max, allow_nan=False)
    return st.fixed_dictionaries(fields)


brief_answers = st.fixed_dictionaries(
    {link: st.integers(0, 10) for link in ("bond", "goals", "approach", "overall")},
    optional={"tension": st.booleans(), "tension_intensity": st.integers(1, 5)},
)
session = st.one_of(st.none(), brief_answers)
histories = st.lists(session, min_size=1, max_size=14)


def observations(history, prefix="s"):
    return [SessionObservation(f"{prefix}{n}", None, answers) for n, answers in enumerate(history)]


@given(
    st.sampled_from(sorted(CATALOGUE)).flatmap(
        lambda i: st.tuples(st.just(i), answers_for(CATALOGUE[i]))
    )
)
def test_scores_stay_in_range(case):
    instrument_id, answers = case
    instrument = CATALOGUE[instrument_id]

    scores = score(instrument, answers)

    assert scores.min_total <= scores.total <= scores.max_total
    assert 0 <= scores.pomp <= 100
    for name, value in scores.subscales.items():
        low, high = instrument.scale_range(name)
        assert low - 1e-9 <= value <= high + 1e-9


@given(
    st.sampled_from(sorted(CATALOGUE)).flatmap(
        lambda i: st.tuples(st.just(i), answers_for(CATALOGUE[i]), st.data())
    )
)
def test_lower_answers_never_raise_a_score(case):
    instrument_id, answers, data = case
    instrument = CATALOGUE[instrument_id]
    item = data.draw(st.sampled_from(instrument.score_items))
    lowered = {**answers, item.link_id: item.min}

    before, after = score(instrument, answers), score(instrument, lowered)

    assert after.total <= before.total and after.pomp <= before.pomp
    assert all(after.subscales[name] <= before.subscales[name] for name in before.subscales)


@given(brief_answers, st.integers(2, 12))
def test_a_constant_history_never_raises_anything_new(answers, length):
    decisions = [a.decision for a in assess_series(observations([answers] * length), BRIEF)]

    if decisions[0] == "none":
        assert set(decisions) == {"none"}
    assert "rupture" not in decisions[1:]


@given(histories)
def test_each_assessment_depends_only_on_the_sessions_so_far(history):
    whole = assess_series(observations(history), BRIEF)

    for cut in range(1, len(history) + 1):
        assert assess_series(observations(history[:cut]), BRIEF)[-1] == whole[cut - 1]


@settings(max_examples=60)
@given(histories, histories, st.lists(st.booleans(), min_size=28, max_size=28))
def test_clients_never_influence_each_other(first, second, order):
    lines = _interleave(_lines("c1", first), _lines("c2", second), order)

    mixed = [o.output for o in replay(lines, CATALOGUE, RuptureRules())]
    alone = [o.output for o in replay(_lines("c1", first), CATALOGUE, RuptureRules())]
    alone += [o.output for o in replay(_lines("c2", second), CATALOGUE, RuptureRules())]

    key = lambda output: (output["client_id"], output["session_id"])  # noqa: E731
    assert sorted(mixed, key=key) == sorted(alone, key=key)


def _lines(client_id, history):
    return [
        json.dumps(
            {"client_id": client_id, "session_id": f"{client_id}-{n:02d}", "answers": answers}
        )
        for n, answers in enumerate(history)
    ]


def _interleave(first, second, order):
    first, second, mixed = list(first), list(second), []
    for take_first in order:
        source = first if (take_first and first) or not second else second
        if source:
            mixed.append(source.pop(0))
    return mixed + first + second
