"""JSON lines leave in writes of whole lines of at most PIPE_BUF bytes, so several workers' lines never mix."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gatewayserver.upstream.jsonlines import whole_line_chunks


@given(st.lists(st.binary(min_size=0, max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=60))
def test_chunks_hold_whole_lines_within_the_limit(lines: list[bytes]) -> None:
    chunks = whole_line_chunks(lines, 512)
    assert b"".join(chunks) == b"".join(lines)
    for chunk in chunks:
        assert chunk.endswith(b"\n")
        assert len(chunk) <= 512


def test_a_line_longer_than_the_limit_is_written_alone() -> None:
    long = b"x" * 5000 + b"\n"
    assert whole_line_chunks([b"a\n", long, b"b\n"], 4096) == [b"a\n", long, b"b\n"]
