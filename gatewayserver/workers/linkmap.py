"""Which peer holds which `GtwGs.LinkGateway` stream: the table a worker consults before the EUI rule.

A datagram's owner is fixed by its EUI (the kernel steers it), but a linked gateway's TCP connection lands on
whichever worker the kernel hands it to, so that worker owns it. Every worker announces its links to its peers
(`links.LinkAnnouncer`) and keeps their announcements here. No I/O and no clock: entries are versioned by the
link's own `connected_at` (wall-clock ns of the worker that accepted it, then that worker's index), so messages
from different workers may arrive in any order and the newest link of a gateway still wins everywhere.

Bounded: at most `cap` gateways; a new one beyond that pushes out the oldest entry (counted, and that gateway's
calls fall back to the EUI rule, as if this worker had never heard of it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: Default bound on the gateways linked at peers one worker remembers.
MAX_LINKED = 100_000


@dataclass(frozen=True, slots=True)
class Linked:
    worker: int
    eui: bytes
    #: (connected_at ns, worker index): the version; the larger one is the newer link of the same gateway.
    version: tuple[int, int]


class LinkMap:
    """gateway_id → the peer holding its link (and EUI → gateway_id for paths that name only the EUI)."""

    def __init__(self, cap: int = MAX_LINKED) -> None:
        self.cap = max(1, cap)
        self._by_id: OrderedDict[str, Linked] = OrderedDict()
        self._by_eui: dict[bytes, str] = {}
        #: Entries pushed out by the bound, for the caller's counter.
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def worker_of(self, gateway_id: str = "", eui: bytes = b"") -> int | None:
        """The peer holding the gateway's link, if one announced it."""
        found = self.find(gateway_id, eui)
        return found[1].worker if found is not None else None

    def find(self, gateway_id: str = "", eui: bytes = b"") -> tuple[str, Linked] | None:
        """The gateway ID and entry of the link a peer announced for the gateway (by ID, else by EUI)."""
        if not gateway_id and len(eui) == 8:
            gateway_id = self._by_eui.get(eui, "")
        entry = self._by_id.get(gateway_id) if gateway_id else None
        return (gateway_id, entry) if entry is not None else None

    def linked(self, gateway_id: str, eui: bytes, worker: int, connected_at: int) -> bool:
        """`worker` linked the gateway at `connected_at`; ignored (False) if a newer link is already known."""
        version = (connected_at, worker)
        old = self._by_id.get(gateway_id)
        if old is not None:
            if old.version >= version:
                return False
            self._drop(gateway_id)
        self._by_id[gateway_id] = Linked(worker, eui, version)
        if len(eui) == 8:
            self._by_eui[eui] = gateway_id
        while len(self._by_id) > self.cap:
            oldest = next(iter(self._by_id))
            self._drop(oldest)
            self.evicted += 1
        return True

    def unlinked(self, gateway_id: str, worker: int, connected_at: int) -> bool:
        """That link ended; a newer link of the same gateway (elsewhere or on the same worker) is kept."""
        old = self._by_id.get(gateway_id)
        if old is None or old.version != (connected_at, worker):
            return False
        self._drop(gateway_id)
        return True

    def forget_worker(self, worker: int) -> int:
        """Drop every entry of `worker` (it restarted or is dead: its streams are gone); returns how many."""
        gone = [gateway_id for gateway_id, entry in self._by_id.items() if entry.worker == worker]
        for gateway_id in gone:
            self._drop(gateway_id)
        return len(gone)

    def _drop(self, gateway_id: str) -> None:
        entry = self._by_id.pop(gateway_id)
        if self._by_eui.get(entry.eui) == gateway_id:
            del self._by_eui[entry.eui]


__all__ = ["MAX_LINKED", "LinkMap", "Linked"]
