"""The pure parts of `gatewayserver events subscribe`: resume point, duplicates, time parsing, line format."""

from __future__ import annotations

import pytest

from gatewayserver.events_cli import StreamState, format_line, format_time, parse_time


def _event(unique_id: str, time: str, name: str = "gs.up.receive") -> dict[str, object]:
    return {"name": name, "time": time, "unique_id": unique_id,
            "identifiers": [{"gateway_ids": {"gateway_id": "gtw1", "eui": "AA555A0000000101"}}]}


def test_time_round_trip_keeps_nanoseconds() -> None:
    ns = parse_time("2026-12-02T10:00:00.123456789Z")
    assert ns == 1_796_205_600_123_456_789
    assert format_time(ns) == "2026-12-02T10:00:00.123456789Z"
    assert parse_time("2026-12-02T11:00:00+01:00") == parse_time("2026-12-02T10:00:00Z")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("yesterday")


def test_resume_point_and_duplicates() -> None:
    state = StreamState(tail=5)
    first = state.request(["gtw1"], ["/gs\\.up\\./"])
    assert first == {"identifiers": [{"gateway_ids": {"gateway_id": "gtw1"}}], "names": ["/gs\\.up\\./"], "tail": 5}
    state.connected(parse_time("2026-12-02T10:00:00Z"))
    assert state.accept(_event("A", "2026-12-02T10:00:01.000000005Z"))
    assert state.accept(_event("B", "2026-12-02T10:00:01.000000005Z"))  # same nanosecond, another event
    # The resumed request starts one nanosecond before the last printed event and no longer replays the tail ...
    assert state.request(["gtw1"], []) == {
        "identifiers": [{"gateway_ids": {"gateway_id": "gtw1"}}], "after": "2026-12-02T10:00:01.000000004Z",
    }
    # ... so the daemon sends A and B again, and only what is new is printed.
    assert not state.accept(_event("A", "2026-12-02T10:00:01.000000005Z"))
    assert not state.accept(_event("B", "2026-12-02T10:00:01.000000005Z"))
    assert state.accept(_event("C", "2026-12-02T10:00:01.000000005Z"))


def test_resume_before_any_event_starts_at_the_first_connection() -> None:
    state = StreamState()
    state.connected(parse_time("2026-12-02T10:00:00Z"))
    assert state.request(["gtw1"], [])["after"] == "2026-12-02T09:59:59.999999999Z"


def test_line_format() -> None:
    event = _event("A", "2026-12-02T10:00:01.123456789Z", "gs.gateway.disconnect")
    event["data"] = {
        "@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails", "namespace": "pkg/gatewayserver",
        "name": "connection_expired", "message_format": "gateway `{uid}` timed out", "attributes": {"uid": "gtw1"},
    }
    assert format_line(event) == (
        "2026-12-02T10:00:01.123Z  gs.gateway.disconnect  gtw1  "
        "pkg/gatewayserver:connection_expired (gateway `gtw1` timed out)"
    )
