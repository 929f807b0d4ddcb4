"""How `/metrics` becomes daemon-wide with several workers: `merge_expositions`, a pure function of the texts.

Each worker keeps its own prometheus_client registry (they are separate processes). `/metrics` on any worker
fetches every peer's exposition over the internal API and merges the samples: counters, histograms and most gauges
are summed over workers (so `gs_uplinks_received_total` counts every worker's uplinks and `gs_gateways_connected`
every gateway); gauges that are a maximum or a health flag keep their meaning (`gs_sub_band_utilization_ratio`
takes the max, `gs_upstream_up` and `gs_redis_up` the min: 0 while any worker's calls fail); per-process metrics
(`process_*`, `python_*`) get a `worker` label instead. `gs_worker_up{worker}` says which workers answered; one
that did not is 0 and the scrape still succeeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: Gauges merged by taking the largest value over workers (each is already a maximum within a worker).
MAX_GAUGES = frozenset({"gs_sub_band_utilization_ratio"})
#: Gauges merged by the smallest value: health flags, 0 while any worker sees the failure.
MIN_GAUGES = frozenset({"gs_upstream_up", "gs_redis_up"})
#: Families that describe one process; they are kept apart with a `worker` label instead of merged.
PER_PROCESS_PREFIXES = ("process_", "python_")

WORKER_UP = "gs_worker_up"


@dataclass
class _Family:
    name: str
    type: str
    documentation: str
    #: (sample name, sorted labels) -> value, in first-seen order.
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)


def _combine(family: _Family, sample_name: str, old: float, new: float) -> float:
    if sample_name.endswith("_created"):
        return min(old, new)  # when the series first existed anywhere
    if family.type == "gauge" and family.name in MAX_GAUGES:
        return max(old, new)
    if family.type == "gauge" and family.name in MIN_GAUGES:
        return min(old, new)
    return old + new


def merge_expositions(texts: Sequence[str | None]) -> str:
    """One exposition from each worker's (index = position; None: the worker did not answer) → the daemon's.

    Sample names and label sets are kept exactly, so dashboards and alert rules written for one process work on
    the merged output unchanged.
    """
    families: dict[str, _Family] = {}
    for index, text in enumerate(texts):
        if text is None:
            continue
        for parsed in text_string_to_metric_families(text):
            family = families.get(parsed.name)
            if family is None:
                family = families[parsed.name] = _Family(parsed.name, parsed.type, parsed.documentation)
            per_process = parsed.name.startswith(PER_PROCESS_PREFIXES)
            for sample in parsed.samples:
                labels = dict(sample.labels)
                if per_process:
                    labels["worker"] = str(index)
                key = (sample.name, tuple(sorted(labels.items())))
                old = family.samples.get(key)
                family.samples[key] = sample.value if old is None else _combine(family, sample.name, old, sample.value)
    up = _Family(WORKER_UP, "gauge", "1 when the worker answered this scrape, 0 when it did not (by worker index)")
    for index, text in enumerate(texts):
        up.samples[(WORKER_UP, (("worker", str(index)),))] = 0.0 if text is None else 1.0
    families[WORKER_UP] = up
    return "".join(_render(family) for family in families.values())


def _render(family: _Family) -> str:
    lines = [f"# HELP {family.name} {_escape_help(family.documentation)}", f"# TYPE {family.name} {family.type}"]
    for (name, labels), value in family.samples.items():
        lines.append(f"{name}{_labels(labels)} {_value(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = [f'{key}="{_escape_label(value)}"' for key, value in labels]
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value)}.0"
    return repr(float(value))


__all__ = ["MAX_GAUGES", "MIN_GAUGES", "WORKER_UP", "merge_expositions"]
