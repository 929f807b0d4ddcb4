"""The internal frame codec, without sockets: whole frames out of arbitrary chunks, hostile input refused with a
bounded reason, and never more than one frame's bytes buffered."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayserver.workers import framing as fr


def decoder(kinds: frozenset[int] = fr.CLIENT_KINDS, max_frame: int = fr.MAX_FRAME) -> fr.FrameDecoder:
    return fr.FrameDecoder(kinds, max_frame)


def test_frames_round_trip() -> None:
    data = (
        fr.encode(fr.HELLO, 0, b"secret")
        + fr.encode_call(fr.CALL, 7, b"/gs.worker.v1.Worker/Metrics", 5000, b"body")
        + fr.encode(fr.CANCEL, 7)
        + fr.encode(fr.CREDIT, 9, fr.encode_u32(128))
    )
    frames = decoder().feed(data)
    assert [(f.kind, f.request_id) for f in frames] == [(fr.HELLO, 0), (fr.CALL, 7), (fr.CANCEL, 7), (fr.CREDIT, 9)]
    assert frames[0].payload == b"secret"
    assert fr.decode_call(frames[1].payload) == (b"/gs.worker.v1.Worker/Metrics", 5000, b"body")
    assert frames[2].payload == b""
    assert fr.decode_u32(frames[3].payload) == 128


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20), st.data())
def test_any_split_of_the_stream_gives_the_same_frames(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(fr.encode(fr.ITEM, i + 1, p) for i, p in enumerate(payloads))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    d = decoder(fr.SERVER_KINDS)
    out: list[fr.Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += d.feed(stream[start:cut])
        start = cut
        assert d.pending <= fr.HEADER_SIZE + max(len(p) for p in payloads)  # at most one frame held
    assert [f.payload for f in out] == payloads
    assert [f.request_id for f in out] == list(range(1, len(payloads) + 1))
    assert d.pending == 0


def test_an_oversize_length_is_refused_before_its_payload_arrives() -> None:
    d = decoder(max_frame=1000)
    with pytest.raises(fr.FrameError) as info:
        d.feed(struct.pack(">I", 1001))  # the length alone: no waiting for a megabyte that never comes
    assert info.value.reason == "oversize"
    d = decoder(max_frame=1000)
    with pytest.raises(fr.FrameError) as info:
        d.feed(struct.pack(">IBI", 0xFFFF_FFFF, fr.CALL, 1))
    assert info.value.reason == "oversize"


def test_before_the_secret_only_a_small_frame_is_accepted() -> None:
    d = decoder(max_frame=fr.MAX_HELLO_FRAME)
    with pytest.raises(fr.FrameError) as info:
        d.feed(fr.encode(fr.HELLO, 0, b"x" * fr.MAX_HELLO_FRAME))
    assert info.value.reason == "oversize"


def test_calls_pipelined_behind_the_hello_are_read_under_the_limit_set_after_it() -> None:
    d = decoder(max_frame=fr.MAX_HELLO_FRAME)
    call = fr.encode_call(fr.CALL, 1, b"m", 1000, b"x" * 5000)
    (hello,) = d.feed(fr.encode(fr.HELLO, 0, b"secret") + call, max_frames=1)
    assert hello.kind == fr.HELLO and d.pending == len(call)  # not parsed yet, so not refused as oversize
    d.max_frame = fr.MAX_FRAME
    (frame,) = d.feed(b"")
    assert fr.decode_call(frame.payload) == (b"m", 1000, b"x" * 5000)


def test_a_length_too_short_for_a_frame_is_refused() -> None:
    with pytest.raises(fr.FrameError) as info:
        decoder().feed(struct.pack(">IBI", 2, fr.CALL, 1))
    assert info.value.reason == "short"


def test_an_unknown_or_wrong_direction_kind_is_refused() -> None:
    with pytest.raises(fr.FrameError) as info:
        decoder().feed(fr.encode(200, 1, b""))
    assert info.value.reason == "kind"
    with pytest.raises(fr.FrameError) as info:  # a server's frame sent to a server
        decoder(fr.CLIENT_KINDS).feed(fr.encode(fr.RESPONSE, 1, b""))
    assert info.value.reason == "kind"


def test_a_truncated_frame_stays_pending_and_is_told_at_end_of_stream() -> None:
    d = decoder()
    frame = fr.encode_call(fr.CALL, 1, b"m", 10, b"0123456789")
    assert d.feed(frame[:-3]) == []
    assert d.pending == len(frame) - 3  # the shell counts this as `truncated` when the stream ends here


@given(st.binary(min_size=1, max_size=2000))
def test_garbage_gives_frames_or_a_frame_error_never_anything_else(garbage: bytes) -> None:
    d = decoder(max_frame=4096)
    try:
        frames = d.feed(garbage)
    except fr.FrameError as exc:
        assert exc.reason in {"oversize", "short", "kind"}
        return
    for frame in frames:
        assert frame.kind in fr.CLIENT_KINDS
    assert d.pending < fr.HEADER_SIZE + 4096


def test_malformed_call_and_credit_payloads() -> None:
    with pytest.raises(fr.FrameError) as info:
        fr.decode_call(b"\x00\x00")
    assert info.value.reason == "call"
    with pytest.raises(fr.FrameError) as info:
        fr.decode_call(struct.pack(">IB", 10, 50) + b"short")
    assert info.value.reason == "call"
    with pytest.raises(fr.FrameError) as info:
        fr.decode_u32(b"\x00")
    assert info.value.reason == "credit"


def test_a_method_name_longer_than_a_frame_allows_is_refused_at_encoding() -> None:
    with pytest.raises(ValueError):
        fr.encode_call(fr.CALL, 1, b"m" * 256, 0, b"")
