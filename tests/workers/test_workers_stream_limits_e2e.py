"""The event stream bounds are the daemon's, not each worker's, over real sockets.

Two workers run as separate processes with their own API ports (workers_support), so each stream is opened at a
chosen worker: `events_max_streams_per_key: 2` and `events_max_streams: 3`, streams held at both workers, and the
one over a bound refused (HTTP 429 / RESOURCE_EXHAUSTED) whichever worker receives it; a closed stream frees its
slot at every worker; a refused one takes none anywhere, also when it is the other worker that refuses it; two
workers receiving the last free slot at once never both admit; and the slots a dead worker's streams held at its
peer are given back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gatewayserver.api.keys import create_key
from gatewayserver.workers import transport, wire
from gatewayserver.workers.spec import socket_path

from stream_limits_support import GATEWAY_ID, OpenStream, Refused, eventually_open, open_stream, refused_total
from workers_support import NetworkServerThread, WorkerProcesses, eui_owned_by

PER_KEY = 2
TOTAL = 3
KEYS = ("per-key", "total-1", "total-2", "total-3", "raced", "racing", "dying")
#: Rounds of two workers receiving a key's last free stream at the same moment.
RACES = 10


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, ns: NetworkServerThread) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(
        tmp_path_factory.mktemp("stream-limits"), 2, ns.port, [(GATEWAY_ID, eui_owned_by(0, 2))],
        "--events-max-streams-per-key", str(PER_KEY), "--events-max-streams", str(TOTAL),
    )
    workers.keys = {name: create_key(workers.keys_file, name, ["RIGHT_ALL"]) for name in KEYS}  # type: ignore[attr-defined]
    workers.start()
    yield workers
    workers.stop()


def key(group: WorkerProcesses, name: str) -> str:
    return str(group.keys[name][0])  # type: ignore[attr-defined]


def address(group: WorkerProcesses, index: int, api: str) -> str:
    worker = group.workers[index]
    return worker.http if api == "http" else worker.grpc_target


async def admitted(group: WorkerProcesses, index: int, api: str, name: str) -> OpenStream:
    result = await open_stream(api, address(group, index, api), key(group, name))
    assert isinstance(result, OpenStream), f"refused at worker {index} over {api}: {result}"
    return result


async def refusal(group: WorkerProcesses, index: int, api: str, name: str) -> Refused:
    result = await open_stream(api, address(group, index, api), key(group, name))
    if isinstance(result, OpenStream):
        await result.close()
        raise AssertionError(f"worker {index} admitted a stream over the bound over {api}")
    return result


def expect(error: str, api: str) -> Refused:
    return Refused(429 if api == "http" else "RESOURCE_EXHAUSTED", error)


async def refused_count(group: WorkerProcesses, reason: str) -> float:
    return await asyncio.to_thread(refused_total, group.workers[0].http, reason)


async def test_streams_per_key_are_counted_over_both_workers(group: WorkerProcesses) -> None:
    before = await refused_count(group, "streams_per_key")
    at_0 = await admitted(group, 0, "grpc", "per-key")
    at_1 = await admitted(group, 1, "http", "per-key")
    # The key has two streams in the daemon, one per worker: a third is refused by either, over either API.
    for index in (0, 1):
        for api in ("http", "grpc"):
            assert await refusal(group, index, api, "per-key") == expect("too_many_streams_per_key", api)
    assert await refused_count(group, "streams_per_key") == before + 4  # each counted once, daemon-wide
    # Closing the stream at worker 0 frees its slot at worker 1 too.
    await at_0.close()
    again = await eventually_open("grpc", address(group, 1, "grpc"), key(group, "per-key"))
    assert await refusal(group, 0, "http", "per-key") == expect("too_many_streams_per_key", "http")
    await at_1.close()
    await again.close()
    # The five refusals took no slot anywhere: the key has both of its streams again, at worker 0 this time.
    streams = [await eventually_open("grpc", address(group, 0, "grpc"), key(group, "per-key")) for _ in range(2)]
    assert await refusal(group, 1, "grpc", "per-key") == expect("too_many_streams_per_key", "grpc")
    for stream in streams:
        await stream.close()


async def test_streams_in_total_are_counted_over_both_workers(group: WorkerProcesses) -> None:
    before = await refused_count(group, "streams_total")
    held = [
        await admitted(group, 0, "grpc", "total-1"),
        await admitted(group, 1, "grpc", "total-1"),
        await admitted(group, 1, "http", "total-2"),
    ]
    # Three streams in the daemon: a fourth is refused at either worker, whatever its key.
    for index in (0, 1):
        for api in ("http", "grpc"):
            assert await refusal(group, index, api, "total-3") == expect("too_many_streams", api)
    assert await refused_count(group, "streams_total") == before + 4
    await held.pop(0).close()  # one at worker 0: its slot at worker 1 is free again too
    held.append(await eventually_open("http", address(group, 1, "http"), key(group, "total-3")))
    assert await refusal(group, 0, "grpc", "total-2") == expect("too_many_streams", "grpc")
    for stream in held:
        await stream.close()


async def peer_streams(group: WorkerProcesses, index: int, key_id: str, count: int) -> tuple[Any, list[Any]]:
    """`count` internal streams at worker `index` for `key_id`, as another worker's public streams open them."""
    conn = await transport.connect(index, socket_path(group.runtime_dir, index), group.secret.encode())
    body = orjson.dumps({"key_id": key_id, "gateway_ids": [GATEWAY_ID], "rights": {GATEWAY_ID: ["RIGHT_ALL"]},
                         "names": None, "tail": 0, "after_ns": None, "now_ns": None, "buffer": 16})
    frames = []
    for _ in range(count):
        stream = conn.stream(wire.EVENTS.encode(), body)
        assert await asyncio.wait_for(anext(stream), 30) == wire.FRAME_HISTORY_END
        frames.append(stream)
    return conn, frames


async def test_a_stream_the_other_worker_refuses_is_refused_and_leaves_no_slot(group: WorkerProcesses) -> None:
    """What two workers admitting the key's last slot at once come to: worker 1 already counts two streams of the
    key that worker 0 does not know of yet. Worker 0 admits the stream itself, worker 1 refuses it: the client
    gets the refusal (not a stream, not a worker failure), counted once, and worker 0's slot is given back."""
    key_id = group.keys["raced"][1].id  # type: ignore[attr-defined]
    conn, internal = await peer_streams(group, 1, key_id, PER_KEY)
    before = await refused_count(group, "streams_per_key")
    for api in ("http", "grpc"):
        assert await refusal(group, 0, api, "raced") == expect("too_many_streams_per_key", api)
    assert await refused_count(group, "streams_per_key") == before + 2
    for stream in internal:
        await stream.aclose()
    conn.close()
    # Nothing was left taken at worker 0 by the refused streams: the key may open both of its streams there.
    streams = [await eventually_open("grpc", address(group, 0, "grpc"), key(group, "raced")) for _ in range(2)]
    assert await refusal(group, 1, "http", "raced") == expect("too_many_streams_per_key", "http")
    for stream in streams:
        await stream.close()


async def test_two_workers_racing_for_the_last_slot_never_admit_both(group: WorkerProcesses) -> None:
    held = await admitted(group, 0, "grpc", "racing")  # one of the key's two slots taken: one left
    outcomes: dict[str, int] = {}
    for _ in range(RACES):
        results = await asyncio.gather(
            *(open_stream("grpc", address(group, index, "grpc"), key(group, "racing")) for index in (0, 1))
        )
        winners = [r for r in results if isinstance(r, OpenStream)]
        for result in results:
            if isinstance(result, Refused):
                assert result == expect("too_many_streams_per_key", "grpc")
        outcome = f"{len(winners)} admitted"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert len(winners) <= 1, "both workers admitted the key's last slot"
        for winner in winners:
            await winner.close()
    print(f"{RACES} races for the last slot: {outcomes}")
    await held.close()
    # Every race's slots were given back, the refused ones' included.
    streams = [await eventually_open("grpc", address(group, i, "grpc"), key(group, "racing")) for i in (0, 1)]
    for stream in streams:
        await stream.close()


async def test_a_dead_workers_streams_free_their_slots_at_its_peer(group: WorkerProcesses) -> None:
    streams = [await admitted(group, 0, "grpc", "dying") for _ in range(PER_KEY)]
    group.kill(0)  # its internal streams at worker 1 end with their connection
    for stream in streams:
        await stream.close()
    await asyncio.to_thread(group.restart, 0)
    # Worker 1 counts no stream of the key any more (a restarted worker 0 starts from none).
    streams = [await eventually_open("grpc", address(group, 1, "grpc"), key(group, "dying")) for _ in range(2)]
    assert await refusal(group, 0, "grpc", "dying") == expect("too_many_streams_per_key", "grpc")
    for stream in streams:
        await stream.close()
