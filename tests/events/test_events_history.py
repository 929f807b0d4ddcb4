"""The event history: bounded in total, per gateway and by age, so one gateway's flood cannot evict the rest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayserver.events import EventBus
from gatewayserver.events.definitions import GS_UP_DROP, GS_UP_FORWARD, GS_UP_RECEIVE
from gatewayserver.events.event import Event
from gatewayserver.events.history import EventHistory

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
HOUR = 3600 * SEC


def gw(gateway_id: str) -> tuple[tuple[str, bytes | None], ...]:
    return ((gateway_id, None),)


def drain(sub) -> list[Event]:  # type: ignore[no-untyped-def]
    out = []
    while sub.pending():
        out.append(sub._queue.popleft())
    return out


def test_a_flooding_gateway_does_not_evict_another_gateways_history() -> None:
    bus = EventBus(history_size=1000, history_per_gateway=100)
    b_events = [GS_UP_RECEIVE.new(T0 + i, gw("gtw-b")) for i in range(20)]
    for event in b_events:
        bus.publish(event)
    flood = [GS_UP_DROP.new(T0 + 100 + i, gw("gtw-a")) for i in range(50_000)]
    for event in flood:
        bus.publish(event)
    assert drain(bus.subscribe({"gtw-b"}, tail=5)) == b_events[-5:]
    assert drain(bus.subscribe({"gtw-b"}, tail=1000)) == b_events
    # Gateway A keeps its own newest events, up to its bound.
    assert drain(bus.subscribe({"gtw-a"}, tail=1000)) == flood[-100:]
    history = bus.event_history
    assert len(history) == 120
    assert history.gateway_count("gtw-a") == 100 and history.gateway_count("gtw-b") == 20
    # Memory: dead entries left by A's evictions are compacted away, never more than about the live ones.
    assert history.stored_entries() <= 2 * history.size + 64


def test_without_the_per_gateway_bound_the_flood_wins() -> None:
    """The failure the bound prevents (per_gateway=0 is the old behaviour: only the total applies)."""
    bus = EventBus(history_size=1000, history_per_gateway=0)
    for i in range(20):
        bus.publish(GS_UP_RECEIVE.new(T0 + i, gw("gtw-b")))
    for i in range(5000):
        bus.publish(GS_UP_DROP.new(T0 + 100 + i, gw("gtw-a")))
    assert drain(bus.subscribe({"gtw-b"}, tail=5)) == []


def test_total_bound_evicts_the_oldest_across_gateways() -> None:
    history = EventHistory(size=6, max_age_ns=HOUR, per_gateway=4)
    events = [GS_UP_RECEIVE.new(T0 + i, gw(f"gtw-{i % 3}")) for i in range(9)]
    for event in events:
        history.append(event)
    assert list(history) == events[-6:]
    assert list(history.newest_first()) == events[::-1][:6]
    assert [history.gateway_count(f"gtw-{i}") for i in range(3)] == [2, 2, 2]


def test_age_bound_and_disabled_history() -> None:
    history = EventHistory(size=100, max_age_ns=10 * SEC, per_gateway=10)
    old = [GS_UP_RECEIVE.new(T0 + i * SEC, gw("gtw-a")) for i in range(5)]
    for event in old:
        history.append(event)
    late = GS_UP_RECEIVE.new(T0 + 13 * SEC, gw("gtw-b"))
    history.append(late)
    assert list(history) == [old[3], old[4], late]
    assert history.gateway_count("gtw-a") == 2
    off = EventHistory(size=0, max_age_ns=HOUR, per_gateway=10)
    off.append(late)
    assert list(off) == [] and len(off) == 0


def test_event_of_several_gateways_counts_against_the_first_and_is_found_by_either() -> None:
    bus = EventBus(history_size=100, history_per_gateway=2)
    both = GS_UP_FORWARD.new(T0, gw("gtw-a") + gw("gtw-b"))
    bus.publish(both)
    for i in range(3):
        bus.publish(GS_UP_RECEIVE.new(T0 + 1 + i, gw("gtw-b")))
    assert bus.event_history.gateway_count("gtw-a") == 1
    assert drain(bus.subscribe({"gtw-a"}, tail=10)) == [both]
    assert both in drain(bus.subscribe({"gtw-b"}, tail=10))
    assert bus.related("nothing") == []


# --- against a model ---------------------------------------------------------------------------------------------


def model(events: list[Event], size: int, max_age_ns: int, per_gateway: int) -> list[Event]:
    """The history's contract written the slow, obvious way."""
    kept: list[Event] = []
    for event in events:
        kept.append(event)
        key = event.gateway_ids[0][0]
        if per_gateway:
            mine = [e for e in kept if e.gateway_ids[0][0] == key]
            if len(mine) > per_gateway:
                kept.remove(mine[0])
        if len(kept) > size:
            kept.pop(0)
        while kept and kept[0].time_ns < event.time_ns - max_age_ns:
            kept.pop(0)
    return kept if size else []


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=300),
    size=st.integers(0, 40),
    per_gateway=st.integers(0, 12),
    max_age=st.integers(1, 60),
)
def test_history_matches_the_model(steps: list[tuple[int, int]], size: int, per_gateway: int, max_age: int) -> None:
    history = EventHistory(size=size, max_age_ns=max_age, per_gateway=per_gateway)
    events: list[Event] = []
    t = T0
    for gateway, advance in steps:
        t += advance
        event = GS_UP_RECEIVE.new(t, gw(f"gtw-{gateway}"))
        events.append(event)
        history.append(event)
        assert history.stored_entries() <= 2 * history.size + 64
    expected = model(events, size, max_age, per_gateway)
    assert list(history) == expected
    assert list(history.newest_first()) == expected[::-1]
    assert len(history) == len(expected)
    for g in range(5):
        assert history.gateway_count(f"gtw-{g}") == sum(1 for e in expected if e.gateway_ids[0][0] == f"gtw-{g}")
