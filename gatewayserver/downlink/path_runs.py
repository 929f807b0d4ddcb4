"""A ScheduleDownlink whose paths belong to different owners (workers or instances): runs of consecutive paths
with one owner, tried in the Network Server's order, the first run that books a window winning.

Both routers (`workers/routing.py`, `cluster/router.py`) split a request this way; only how they find an owner and
call it differs, so the splitting and the merging of the failures live here once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from gatewayserver.errors import DATA_LOSS, GsError
from gatewayserver.ttnpb import gatewayserver_pb2, lorawan_pb2, messages_pb2

from . import errors as derr

Owner = TypeVar("Owner", bound=Hashable | None)
Path = lorawan_pb2.DownlinkPath


def runs_of(paths: Iterable[tuple[Owner, Path]]) -> list[tuple[Owner, list[Path]]]:
    """Consecutive paths of one owner grouped, in order."""
    runs: list[tuple[Owner, list[Path]]] = []
    for owner, path in paths:
        if runs and runs[-1][0] == owner:
            runs[-1][1].append(path)
        else:
            runs.append((owner, [path]))
    return runs


async def schedule_runs(
    message: messages_pb2.DownlinkMessage,
    runs: list[tuple[Owner, list[Path]]],
    schedule_on: Callable[[Owner, messages_pb2.DownlinkMessage], Awaitable[gatewayserver_pb2.ScheduleDownlinkResponse]],
) -> gatewayserver_pb2.ScheduleDownlinkResponse:
    """Each run to its owner (the message itself when there are several runs is copied with that run's paths);
    all failing: one `schedule` error with every path's error, DATA_LOSS `uplink_token` if only tokens failed."""
    path_errors: list[Any] = []
    token_errors_only = True
    for owner, run in runs:
        part = messages_pb2.DownlinkMessage()
        part.CopyFrom(message)
        del part.request.downlink_paths[:]
        part.request.downlink_paths.extend(run)
        try:
            return await schedule_on(owner, part)
        except GsError as exc:
            token_errors_only &= exc.name == "uplink_token"
            path_errors.extend(path_errors_of(exc))
    if token_errors_only:
        raise derr.schedule(path_errors, code=DATA_LOSS, name="uplink_token")
    raise derr.schedule(path_errors)


def path_errors_of(exc: GsError) -> list[Any]:
    """The per-path errors a failed schedule carries, or the error itself as one (an owner that did not answer)."""
    for item in exc.details:
        if isinstance(item, gatewayserver_pb2.ScheduleDownlinkErrorDetails):
            return list(item.path_errors)
    return [derr.details_of(exc)]


__all__ = ["path_errors_of", "runs_of", "schedule_runs"]
