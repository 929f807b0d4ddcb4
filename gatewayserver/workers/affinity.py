"""Which CPU each worker runs on (`--worker-cpus`), chosen by the supervisor and applied by the worker itself.

Why bind at all: on the machines measured (2 vCPUs under KVM) two workers left to the kernel cost 19-23 % more CPU
per uplink than one worker doing all the traffic on the same cores, while the same two workers each bound to its
own core cost 9-13 % more (`benchmarks/README.md`, "The same rate for both"). A worker's main thread, grpc's
poller and its executor threads hand each other work many times per loop turn; on one core those hand-offs are
plain context switches, spread over cores they become cross-CPU wake-ups (an inter-processor interrupt, under a
hypervisor a VM exit) and cold caches. Binding is opt-in, as nginx's `worker_cpu_affinity` is: on a host where
other busy processes share the cores (the benchmark's load generator and stand-in, say) a bound worker cannot
move away from them.

A worker binds itself first thing in its `main`, before any thread exists, so grpc's threads inherit the mask; a
restarted worker gets its slot's CPU again.
"""

from __future__ import annotations

import os

NONE = "none"
AUTO = "auto"


def parse_worker_cpus(value: object) -> str:
    """`none`, `auto` or a comma-separated list of CPU numbers, normalised (`"0, 2"` -> `"0,2"`)."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU choice: {value!r}")
    text = str(value).strip().lower()
    if text in (NONE, AUTO, ""):
        return text or NONE
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or len(part) > 5:
            raise ValueError(f"not a CPU list: {value!r} (none, auto, or CPU numbers such as 0,2,4)")
        cpus.append(int(part))
    if len(set(cpus)) != len(cpus):
        raise ValueError(f"a CPU listed twice: {value!r}")
    return ",".join(str(cpu) for cpu in cpus)


def usable() -> list[int]:
    """The CPUs this process may run on (its affinity mask, which cgroups and `taskset` narrow), in order."""
    return sorted(os.sched_getaffinity(0))


def cpu_of(setting: str, index: int, allowed: list[int]) -> int | None:
    """The CPU worker `index` binds to: the index-th CPU of the list (`auto`: of `allowed`), cycling when there
    are more workers than CPUs; None for `none`."""
    if setting == NONE:
        return None
    cpus = allowed if setting == AUTO else [int(cpu) for cpu in setting.split(",")]
    return cpus[index % len(cpus)] if cpus else None


def check(setting: str, allowed: list[int]) -> str | None:
    """Why `setting` cannot be applied here (one line for the operator), or None."""
    if setting == NONE:
        return None
    if not hasattr(os, "sched_setaffinity"):
        return "worker_cpus: binding workers to CPUs needs Linux; use none here"
    if setting != AUTO:
        foreign = [cpu for cpu in (int(c) for c in setting.split(",")) if cpu not in allowed]
        if foreign:
            return (f"worker_cpus: CPU {','.join(map(str, foreign))} is not one this process may run on "
                    f"(usable: {','.join(map(str, allowed))}); list only those, or use auto")
    return None


def bind(cpu: int) -> None:
    """Run this process (and the threads it starts from now on) on `cpu` only."""
    os.sched_setaffinity(0, {cpu})


__all__ = ["AUTO", "NONE", "bind", "check", "cpu_of", "parse_worker_cpus", "usable"]
