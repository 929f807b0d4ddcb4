"""`gatewayserver run --workers 2`: the event stream bounds hold for the daemon, whichever worker the kernel hands
each stream's connection to.

Every stream is opened over a connection of its own (HTTP and gRPC in turn), so the kernel spreads them over both
workers; each refusal's log line names the worker that received it, and the attempts go on until both workers
have refused at least one. With `events_max_streams_per_key: 2` the key never has more than two streams open in
the daemon (each worker alone would have admitted two), every refusal is HTTP 429 / RESOURCE_EXHAUSTED and counted
once in the daemon-wide `gs_event_streams_refused_total`; a closed stream's slot is free again and refused ones
took none. Likewise for `events_max_streams: 3` over several keys.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

from gatewayserver.api.keys import create_key

from stream_limits_support import OpenStream, Refused, eventually_open, open_stream, refused_total
from test_workers_e2e import NetworkServerThread, Workers

PER_KEY = 2
TOTAL = 3
#: Attempts before giving up on the kernel handing a connection to each worker (each does with probability 1/2).
MAX_ATTEMPTS = 40


def test_stream_bounds_are_the_daemons_whichever_worker_receives_the_stream(tmp_path: Path) -> None:
    keys_file = str(tmp_path / "keys.json")
    keys = {name: create_key(keys_file, name, ["RIGHT_ALL"])[0] for name in ("a", "b", "c")}
    with NetworkServerThread() as ns:
        workers = Workers(
            tmp_path, 2, ns.port, "--keys-file", keys_file,
            "--events-max-streams-per-key", str(PER_KEY), "--events-max-streams", str(TOTAL),
        )
        try:
            asyncio.run(exercise(workers, keys))
        finally:
            workers.kill()


def refusing_workers(workers: Workers, reason: str) -> set[int]:
    """The workers whose log says they refused a stream for `reason` (each line names its worker)."""
    pattern = rf"event stream refused reason={reason} .*worker=(\d+)"
    return {int(m.group(1)) for m in re.finditer(pattern, workers.log())}


async def exercise(workers: Workers, keys: dict[str, str]) -> None:
    http, grpc_target = f"http://127.0.0.1:{workers.http_port}", f"127.0.0.1:{workers.grpc_port}"
    addresses = {"http": http, "grpc": grpc_target}
    apis = itertools.cycle(("http", "grpc"))
    held: list[OpenStream] = []

    async def attempts(key: str, reason: str, error: str, bound: int) -> int:
        """Open streams with `key` until both workers have refused one; `bound` of them may be admitted in all."""
        refused = 0
        for attempt in range(MAX_ATTEMPTS):
            api = next(apis)
            result = await open_stream(api, addresses[api], key)
            if isinstance(result, OpenStream):
                held.append(result)
                assert len(held) <= bound, f"attempt {attempt}: a stream over the bound of {bound} was admitted"
            else:
                assert result == Refused(429 if api == "http" else "RESOURCE_EXHAUSTED", error), result
                refused += 1
            if len(held) == bound and refusing_workers(workers, reason) == {0, 1}:
                return refused
        raise AssertionError(f"no refusal by both workers in {MAX_ATTEMPTS} attempts: {workers.log()[-3000:]}")

    try:
        # Per key: two streams in the daemon, then every attempt refused, by either worker.
        per_key = await attempts(keys["a"], "streams_per_key", "too_many_streams_per_key", PER_KEY)
        assert len(held) == PER_KEY
        counted = await asyncio.to_thread(refused_total, http, "streams_per_key")
        print(f"streams_per_key: {PER_KEY} admitted, {per_key} refused, {counted:g} counted")
        assert counted == per_key  # each refusal counted once over both workers
        # A closed stream frees its slot wherever it was counted; the refusals took none: two again, not more.
        await held.pop().close()
        held.append(await eventually_open("grpc", grpc_target, keys["a"]))
        for _ in range(4):
            api = next(apis)
            assert isinstance(await open_stream(api, addresses[api], keys["a"]), Refused)
        for stream in held:
            await stream.close()
        held.clear()
        for _ in range(PER_KEY):
            api = next(apis)
            held.append(await eventually_open(api, addresses[api], keys["a"]))

        # In total: key a's two and one of key b's make three; any key's next stream is refused by either worker.
        held.append(await eventually_open("grpc", grpc_target, keys["b"]))
        total = await attempts(keys["c"], "streams_total", "too_many_streams", TOTAL)
        counted = await asyncio.to_thread(refused_total, http, "streams_total")
        print(f"streams_total: {TOTAL} admitted, {total} refused, {counted:g} counted")
        assert counted == total
        await held.pop().close()  # key b's
        held.append(await eventually_open("http", http, keys["c"]))
    finally:
        for stream in held:
            await stream.close()
