"""The sans-I/O ownership book: what is claimed at once, renewed, written with stats (debounced), released, and
what survives a failed write to Redis."""

from __future__ import annotations

from gatewayserver.cluster.ownership import OwnershipBook
from gatewayserver.cluster.records import Owner, parse_moved_notice

S = 1_000_000_000


def book(**kw: int) -> OwnershipBook:
    return OwnershipBook("gs-a", 1, renew_ns=kw.get("renew_ns", 60 * S), stats_ns=kw.get("stats_ns", 5 * S),
                         max_pending=kw.get("max_pending", 100))


def test_a_connect_is_claimed_with_the_next_flush_and_names_this_instance_and_worker() -> None:
    b = book()
    record = b.connected("gw-1", since_ns=7, now=0)
    assert Owner.decode(record) == Owner("gs-a", 1, 7)
    batch = b.due(0, lambda gid: 0)
    assert batch.claims == [("gw-1", record)] and not batch.renewals and not batch.releases
    assert not b.due(1, lambda gid: 0)  # claimed once, nothing due until the stats or renewal interval


def test_stats_follow_traffic_at_most_every_interval_and_the_record_is_renewed_without_traffic() -> None:
    b = book(renew_ns=60 * S, stats_ns=5 * S)
    record = b.connected("gw-1", 0, 0)
    b.due(0, lambda gid: 0)
    activity = {"gw-1": 1}
    assert not b.due(4 * S, activity.get)  # traffic, but within the stats interval: nothing yet
    assert b.due(5 * S, activity.get).renewals == [("gw-1", record, True)]
    assert not b.due(9 * S, activity.get)  # no new traffic
    activity["gw-1"] = 2
    assert not b.due(9 * S, activity.get)
    assert b.due(10 * S, activity.get).renewals == [("gw-1", record, True)]
    assert b.due(70 * S, activity.get).renewals == [("gw-1", record, True)]  # no new traffic: renewed, stats too
    assert not b.due(70 * S, lambda gid: None)  # gone from the core: nothing


def test_a_release_carries_the_final_stats_except_for_a_move() -> None:
    b = book()
    r1 = b.connected("gw-1", 0, 0)
    b.connected("gw-2", 0, 0)
    b.due(0, lambda gid: 0)
    assert b.disconnected("gw-1", "expired", b"final") is True
    assert b.disconnected("gw-2", "moved", b"") is False  # the record is the new owner's now
    batch = b.due(S, lambda gid: 0)
    assert batch.releases == [("gw-1", r1, b"final")] and not batch.claims
    assert len(b) == 0


def test_a_reconnect_before_the_flush_claims_the_new_connection_instead_of_releasing() -> None:
    b = book()
    b.connected("gw-1", 1, 0)
    b.disconnected("gw-1", "replaced", b"old")
    r2 = b.connected("gw-1", 2, 0)
    batch = b.due(0, lambda gid: 0)
    assert batch.claims == [("gw-1", r2)] and not batch.releases


def test_a_failed_batch_is_due_again_and_pending_releases_are_bounded() -> None:
    b = book(max_pending=2)
    r1 = b.connected("gw-1", 0, 0)
    batch = b.due(0, lambda gid: 0)
    b.failed(batch, S)
    assert b.due(S, lambda gid: 0).claims == [("gw-1", r1)]
    for i in range(4):
        b.connected(f"gw-x{i}", 0, 0)
        b.disconnected(f"gw-x{i}", "expired", b"")
    assert b.take_dropped() == 2  # the two oldest releases given up (their records expire by themselves)
    batch = b.due(2 * S, lambda gid: 0)
    assert [gid for gid, _, _ in batch.releases] == ["gw-x2", "gw-x3"]
    b.failed(batch, 2 * S)
    assert b.pending == 2


def test_resync_after_an_outage_makes_every_record_and_its_stats_due() -> None:
    b = book()
    record = b.connected("gw-1", 0, 0)
    b.due(0, lambda gid: 0)
    b.resync(S)
    assert b.due(S, lambda gid: 0).renewals == [("gw-1", record, True)]


def test_displaced_only_for_the_current_connection() -> None:
    b = book()
    old = b.connected("gw-1", 1, 0)
    new = b.connected("gw-1", 2, 0)
    assert b.displaced("gw-1", new) and not b.displaced("gw-1", old) and not b.displaced("gw-2", new)


def test_hostile_records_and_notices_read_as_nothing() -> None:
    for raw in (b"", b"{", b"[]", b'{"instance": 1}', b"x" * 5000, b'{"instance":"a","worker":"z","since":1}'):
        assert Owner.decode(raw) is None
    for raw in (b"{", b'{"gateway_id": 5, "instance": "a"}', b'{"gateway_id": "' + b"a" * 40 + b'", "instance": "a"}',
                b"[1]"):
        assert parse_moved_notice(raw) is None
    assert parse_moved_notice(b'{"gateway_id": "gw-1", "instance": "gs-b", "worker": 0}') == ("gw-1", "gs-b")
