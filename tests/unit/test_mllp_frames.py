"""The MLLP frame decoder: the same frames come out however the bytes are split into reads,
stray bytes between frames are dropped, and the size bound holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.intake.mllp import END, START, FrameDecoder, TooLarge, frame

# Message bytes never hold the framing bytes (HL7 v2 forbids them in ER7).
BODY = st.binary(min_size=1, max_size=200).map(
    lambda b: bytes(c for c in b if c not in (0x0B, 0x1C)) or b"MSH"
)
GARBAGE = st.binary(max_size=20).map(lambda b: bytes(c for c in b if c != 0x0B))


def feed_in_pieces(decoder: FrameDecoder, stream: bytes, cuts: list[int]) -> list:
    out, last = [], 0
    for cut in sorted(set(c % (len(stream) + 1) for c in cuts)) + [len(stream)]:
        out += decoder.feed(stream[last:cut])
        last = cut
    return out


@given(
    st.lists(st.tuples(GARBAGE, BODY), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0), max_size=30),
)
def test_frames_survive_any_read_boundaries_and_garbage_between(items, cuts):
    stream = b"".join(garbage + frame(body) for garbage, body in items)
    decoder = FrameDecoder(max_size=1024)
    assert feed_in_pieces(decoder, stream, cuts) == [body for _, body in items]
    assert not decoder.partial
    assert decoder.discarded == sum(len(garbage) for garbage, _ in items)


def test_two_frames_in_one_read_come_out_in_order():
    decoder = FrameDecoder(1024)
    assert decoder.feed(frame(b"MSH|1") + frame(b"MSH|2")) == [b"MSH|1", b"MSH|2"]


def test_a_split_end_marker_waits_for_its_second_byte():
    decoder = FrameDecoder(1024)
    assert decoder.feed(START + b"MSH|1" + END[:1]) == []
    assert decoder.partial
    assert decoder.feed(END[1:]) == [b"MSH|1"]


def test_a_new_start_byte_abandons_an_unfinished_frame():
    decoder = FrameDecoder(1024)
    assert decoder.feed(START + b"MSH|cut off" + frame(b"MSH|2")) == [b"MSH|2"]


def test_an_oversized_frame_is_skipped_without_buffering_it_and_the_next_one_is_read():
    decoder = FrameDecoder(max_size=100)
    assert decoder.feed(START + b"MSH|big|" + b"x" * 500) == []
    assert len(decoder._buffer) <= 1  # the bound holds while the frame streams in
    assert decoder.feed(b"y" * 500) == []
    [too_large, after] = decoder.feed(END + frame(b"MSH|next"))
    assert isinstance(too_large, TooLarge) and too_large.head.startswith(b"MSH|big|")
    assert after == b"MSH|next"


def test_a_frame_just_over_the_bound_in_one_read_is_reported_too_large():
    decoder = FrameDecoder(max_size=10)
    [item] = decoder.feed(frame(b"MSH|" + b"x" * 7))
    assert isinstance(item, TooLarge)
