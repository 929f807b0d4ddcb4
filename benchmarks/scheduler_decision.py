"""Pure scheduler decision cost (µs per call), no I/O: `python benchmarks/scheduler_decision.py`.

Load: an EU868 gateway that has transmitted for an hour (RX1/RX2 class A downlinks spread over the 1 % sub-bands
L and M and the 10 % sub-band P, ~1800 emissions remembered) and keeps taking requests.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler import (
    DutyCycle,
    GatewayScheduler,
    SchedulerError,
    SubBand,
    TxSchedulePriority,
    lora_time_on_air,
)

MS = 1_000_000
S = 1_000_000_000
EPOCH = 1_700_000_000 * S
EU = [
    SubBand(863_000_000, 865_000_000, 0.001, 16.15),
    SubBand(865_000_000, 868_000_000, 0.01, 16.15),
    SubBand(868_000_000, 868_600_000, 0.01, 16.15),
    SubBand(868_700_000, 869_200_000, 0.001, 16.15),
    SubBand(869_400_000, 869_650_000, 0.1, 29.15),
    SubBand(869_700_000, 870_000_000, 0.01, 16.15),
]
RX1 = [867_100_000, 867_300_000, 867_500_000, 867_700_000, 868_100_000, 868_300_000, 868_500_000]
RX2 = 869_525_000


def loaded_gateway(rng: random.Random) -> tuple[GatewayScheduler, int]:
    sched = GatewayScheduler(EU)
    sched.clock.sync(0, EPOCH)
    now = EPOCH
    booked = 0
    while now < EPOCH + 3600 * S:
        now += rng.randint(500 * MS, 3 * S)
        ct = now - EPOCH
        freq = rng.choice(RX1) if rng.random() < 0.7 else RX2
        toa = lora_time_on_air(rng.randint(13, 60), rng.choice([7, 8, 9, 10]), 125_000, "4/5", crc=False)
        try:
            sched.schedule_at(ct + 1 * S, freq, toa, TxSchedulePriority.NORMAL, now)
            booked += 1
        except SchedulerError:
            pass
    return sched, now


def per_call_us(fn, iterations: int) -> float:
    start = time.perf_counter()
    for i in range(iterations):
        fn(i)
    return (time.perf_counter() - start) / iterations * 1e6


def main() -> None:
    rng = random.Random(4)
    base, now = loaded_gateway(rng)
    ct = now - EPOCH
    remembered = sum(len(base.sub_band_emissions(i)) for i in range(len(base.sub_bands)))
    n = 2000

    # Accepted schedule_at (RX1 class A), fresh copy every batch so the load stays realistic.
    batches, total = 10, 0.0
    for _ in range(batches):
        sched = copy.deepcopy(base)
        offsets = [ct + 2 * S + i * 400 * MS for i in range(n // batches)]

        def accept(i: int, sched: GatewayScheduler = sched, offsets: list[int] = offsets) -> None:
            try:
                sched.schedule_at(offsets[i], RX1[i % len(RX1)], 51_456_000, TxSchedulePriority.NORMAL, now)
            except DutyCycle:
                pass

        total += per_call_us(accept, n // batches)
    accepted_us = total / batches

    # Refused schedule_at (conflict) and refused by duty cycle: no state change, repeatable.
    sched = copy.deepcopy(base)
    booked = sched.schedule_at(ct + 5 * S, RX2, 100 * MS, TxSchedulePriority.NORMAL, now)
    conflict_us = per_call_us(
        lambda i: _swallow(sched.schedule_at, booked.starts + 10 * MS, RX2, 50 * MS, 3, now), n
    )
    k = copy.deepcopy(base)
    k.schedule_at(ct + 1 * S, 864_000_000, 2_400 * MS, TxSchedulePriority.NORMAL, now)
    duty_us = per_call_us(lambda i: _swallow(k.schedule_at, ct + 10 * S, 864_000_000, 500 * MS, 3, now), n)

    # schedule_anytime (class C) on the loaded gateway.
    sched = copy.deepcopy(base)
    anytime_us = per_call_us(
        lambda i: sched.schedule_anytime(RX2, 51_456_000, TxSchedulePriority.NORMAL, now), n // 4
    )

    toa_us = per_call_us(lambda i: lora_time_on_air(i & 255, 7 + (i % 6), 125_000, "4/5", crc=False), 50_000)

    print(f"load: {remembered} emissions remembered on one EU868 gateway (1 h of class A traffic)")
    print(f"schedule_at accepted (RX1):        {accepted_us:8.2f} µs/call")
    print(f"schedule_at refused (conflict):    {conflict_us:8.2f} µs/call")
    print(f"schedule_at refused (duty cycle):  {duty_us:8.2f} µs/call")
    print(f"schedule_anytime (class C, RX2):   {anytime_us:8.2f} µs/call")
    print(f"lora_time_on_air:                  {toa_us:8.2f} µs/call")


def _swallow(fn, *args):
    try:
        return fn(*args)
    except SchedulerError:
        return None


if __name__ == "__main__":
    main()
