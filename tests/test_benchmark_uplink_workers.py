"""benchmarks/uplink.py --workers 1,2 --workers-repeat R: searches alternate, and the report's medians and
round-by-round ratios are computed from what each search found."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _uplink() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_uplink", BENCHMARKS / "uplink.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def run(workers: int, round_: int, rate: float, cpu: float) -> dict[str, object]:
    return {"workers": workers, "round": round_, "sustained_rate": rate, "daemon_cpu_per_uplink_us": cpu}


def test_medians_and_round_by_round_ratios() -> None:
    summary = _uplink().summarise_workers([
        run(1, 0, 4000, 200.0), run(2, 0, 6000, 190.0),
        run(2, 1, 5000, 220.0), run(1, 1, 5000, 150.0),
        run(1, 2, 3800, 205.0), run(2, 2, 5700, 200.0),
    ])
    one, two = summary["counts"]["1"], summary["counts"]["2"]
    assert (one["median_rate"], one["median_cpu_per_uplink_us"]) == (4000, 200.0)
    assert (two["median_rate"], two["median_cpu_per_uplink_us"]) == (5700, 200.0)
    assert (two["rate_ratio"], two["cpu_growth_percent"]) == (1.43, 0.0)
    assert two["rounds"] == [[1.5, -5.0], [1.0, 46.7], [1.5, -2.4]]


def test_a_search_without_a_figure_is_left_out_of_the_cpu_median() -> None:
    summary = _uplink().summarise_workers([run(1, 0, 0.0, None), run(2, 0, 5000, 180.0)])  # type: ignore[arg-type]
    assert summary["counts"]["1"]["median_cpu_per_uplink_us"] is None
    assert "rate_ratio" not in summary["counts"]["2"] and summary["counts"]["2"]["rounds"] == []

