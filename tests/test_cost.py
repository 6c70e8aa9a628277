"""measure_cost: interleaved rounds, per-round student/teacher ratios and the record of how busy the machine was."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
import yaml

from akdg import cost, steps, tables
from akdg.config import validate_config
from akdg.registry import AkdgError
from conftest import REPO

TINY = {"teacher": {"arch": "dcgan", "width": 8}, "student": {"arch": "mlp", "width": 8}}


def test_measure_cost_writes_rounds_ratios_and_the_measurement(digits_npz: Path, tmp_path: Path) -> None:
    spec = {"generators": TINY, "z_dim": 8, "speed": {"batch_size": 4, "min_run_time": 0.002, "rounds": 3, "device": "cpu"}}
    steps.measure_cost(spec, digits_npz, tmp_path / "cost.json", threads=1)
    figures = json.loads((tmp_path / "cost.json").read_text())
    assert set(figures) == {"teacher", "student"}
    for entry in figures.values():
        assert len(entry["images_per_s_rounds"]) == len(entry["latency_ms_rounds"]) == entry["speed_rounds"] == 3
        assert entry["images_per_s"] == statistics.median(entry["images_per_s_rounds"]) and entry["latency_ms"] == statistics.median(
            entry["latency_ms_rounds"]
        )
        assert entry["params"] > 0 and entry["mult_adds"] > 0
    student, teacher = figures["student"], figures["teacher"]
    expected = [mine / theirs for mine, theirs in zip(student["images_per_s_rounds"], teacher["images_per_s_rounds"])]
    assert student["throughput_ratio_rounds"] == pytest.approx(expected) and student["throughput_ratio"] == pytest.approx(
        statistics.median(expected)
    )
    assert "throughput_ratio_rounds" not in teacher
    measurement = student["measurement"]
    assert measurement == teacher["measurement"]  # one job, one record, in every generator's entry
    assert (measurement["rounds"], measurement["threads"], measurement["cpu_count"]) == (3, 1, os.cpu_count())
    assert measurement["wall_seconds"] > 0 and measurement["cpu_seconds"] >= 0
    assert measurement["loaded"] == cost.machine_loaded(
        measurement["other_runnable_median"], measurement["load_average_1min_before"], os.cpu_count(), 1
    )
    if Path("/proc/loadavg").exists():
        assert len(measurement["other_runnable_rounds"]) == 3 and measurement["other_runnable_median"] == statistics.median(
            measurement["other_runnable_rounds"]
        )
    assert "3 interleaved rounds" in tables.speed_line(student)


def test_throughput_ratios_pair_rounds() -> None:
    speeds = {"teacher": {"images_per_s_rounds": [10.0, 20.0, 40.0]}, "s": {"images_per_s_rounds": [30.0, 40.0, 160.0]}}
    ratios = cost.throughput_ratios(speeds, "teacher")
    assert ratios == {"s": {"throughput_ratio_rounds": [3.0, 2.0, 4.0], "throughput_ratio": 3.0, "throughput_reference": "teacher"}}


@pytest.mark.parametrize(
    ("others", "load", "cores", "threads", "loaded"),
    [
        (0, 9.0, 8, 4, False),  # the sampled tasks decide where there are samples, not the lagging load average
        (4, 0.0, 8, 4, False),  # 4 others and 4 threads fit 8 cores
        (5, 0.0, 8, 4, True),
        (None, 4.5, 8, 4, True),  # no /proc: the load average before the measurement decides
        (None, 3.0, 8, 4, False),
    ],
)
def test_machine_loaded_rule(others: float | None, load: float, cores: int, threads: int, loaded: bool) -> None:
    assert cost.machine_loaded(others, load, cores, threads) is loaded


@pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="/proc/loadavg is Linux's")
def test_other_runnable_tasks_leaves_this_process_out() -> None:
    count = cost.other_runnable_tasks()
    assert isinstance(count, int) and count >= 0


def test_speed_rounds_below_three_are_refused_by_the_schema() -> None:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["speed"]["rounds"] = 2
    with pytest.raises(AkdgError, match="rounds"):
        validate_config(config)
