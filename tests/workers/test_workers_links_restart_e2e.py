"""Links across a worker's death and restart, over three real worker processes (own group: one is killed).

- a peer found dead (it refuses the connection) loses its links: the next downlink goes by the EUI rule;
- a restarted worker learns at start the links its peers hold, before its API answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest

from gatewayserver.workers.peers import peer_error

from test_workers_links_e2e import COUNT, link, schedule, stats, uplink_token, wait_linked_everywhere
from downlink.downlink_support import class_a
from workers_support import NetworkServerThread, WorkerProcesses, eui_owned_by

GATEWAYS = [(f"gw-restart-{n}", eui_owned_by(0, COUNT, salt=n + 10)) for n in range(2)]


@pytest.fixture
def group(tmp_path_factory: pytest.TempPathFactory, ns: NetworkServerThread) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(tmp_path_factory.mktemp("links-restart"), COUNT, ns.port, GATEWAYS).start()
    yield workers
    workers.stop()


async def test_dead_peer_loses_its_links_and_a_restarted_worker_learns_the_others(
    group: WorkerProcesses, ns: NetworkServerThread
) -> None:
    on_dead, on_survivor = GATEWAYS[0][0], GATEWAYS[1][0]
    doomed = await link(group, group.workers[1], on_dead)
    survivor = await link(group, group.workers[2], on_survivor)
    try:
        await wait_linked_everywhere(group, on_dead)
        await wait_linked_everywhere(group, on_survivor)
        token = await uplink_token(ns, doomed)
        group.kill(1)
        # Worker 2 forwards to worker 1 (dead: worker_unavailable), learns it is dead, then goes by EUI to worker 0,
        # which verifies the token and answers as for any gateway not connected.
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while True:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await schedule(group.workers[2], class_a(token))
            error = peer_error(0, info.value)
            if error.name == "schedule":
                (details,) = error.details
                seen.append(details.path_errors[0].cause.name)
                break
            seen.append(error.name)
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.2)
        assert seen[0] == "worker_unavailable" and seen[-1] == "not_connected", seen
        # Restarted, worker 1 knows the link worker 2 holds as soon as its API answers.
        group.restart(1)
        status, body = await stats(group, group.workers[1], on_survivor)
        assert status == 200 and body["protocol"] == "grpc" and "disconnected_at" not in body, body
    finally:
        await doomed.close()
        await survivor.close()
