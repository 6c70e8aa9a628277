"""The benchmarks compare equal work: the bare loop makes akdg's updates, the PNG files give akdg's metrics.

A speed ratio means something only if both sides do the same thing; these tests check that on tiny
sizes, and that each check would notice a difference.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch

from akdg.architectures import build_generator
from akdg.datasets import ImageSplits
from akdg.feature_extractor_classifier import NAME as CLASSIFIER

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import dag_budget  # noqa: E402
import eval_paths  # noqa: E402
import loop_overhead  # noqa: E402
import train_options  # noqa: E402

CPU = torch.device("cpu")
STEPS = 3


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and several times slower on two when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_setup(method: str, loss: str = "hinge") -> loop_overhead.Setup:
    """16 px grey images, small DCGAN/SNGAN models, two D steps per G step, an EMA: every branch of the loop."""
    torch.manual_seed(0)
    teacher = build_generator({"arch": "sngan", "width": 8}, resolution=16, channels=1, z_dim=8).eval().requires_grad_(False)
    return loop_overhead.Setup(
        label=f"tiny {method}",
        method=method,
        options={"kd_weight": 0.5} if method == "akdg" else {},
        generator=build_generator({"arch": "dcgan", "width": 8}, resolution=16, channels=1, z_dim=8),
        teacher=teacher if method != "vanilla" else None,
        discriminator={"arch": "dcgan", "width": 8},
        images=torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8),
        data="random",
        z_dim=8,
        batch_size=8,
        n_dis=2,
        optimizer={"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999]},
        loss=loss,
        ema_decay=0.9,
        log_every=2,
    )


@pytest.mark.parametrize(("method", "loss"), [("vanilla", "hinge"), ("mse", "hinge"), ("akdg", "hinge"), ("akdg", "nonsaturating")])
def test_bare_loop_ends_with_akdgs_weights(method: str, loss: str) -> None:
    setup = tiny_setup(method, loss)
    ours = loop_overhead.prepare_ours(setup, STEPS, CPU, 0, amp=False)()
    bare = loop_overhead.prepare_bare(setup, STEPS, CPU, False, 0)()
    assert loop_overhead.largest_difference(ours, bare) == 0.0
    assert len(ours) == 1 + loop_overhead.DISCRIMINATORS[method]
    # the check can fail: training moved the student, and another seed's run ends elsewhere
    assert loop_overhead.largest_difference(ours[:1], [setup.generator]) > 0.0
    assert loop_overhead.largest_difference(ours, loop_overhead.prepare_bare(setup, STEPS, CPU, False, 1)()) > 0.0


def test_bare_loop_ends_with_akdgs_weights_under_amp() -> None:
    setup = tiny_setup("vanilla")
    ours = loop_overhead.prepare_ours(setup, STEPS, CPU, 0, amp=True)()
    bare = loop_overhead.prepare_bare(setup, STEPS, CPU, True, 0)()
    assert loop_overhead.largest_difference(ours, bare) == 0.0


def test_measure_reports_steps_per_second_and_equal_weights() -> None:
    result = loop_overhead.measure(tiny_setup("akdg"), 2, 2, CPU, False, 0)
    assert result["weights_equal"] and result["max_abs_weight_difference"] == 0.0
    assert len(result["seconds"]["ours"]) == len(result["seconds"]["bare"]) == 2
    assert result["ours_over_bare_of_medians"] == pytest.approx(result["ours_steps_per_s"] / result["bare_steps_per_s"])
    seconds = result["seconds"]
    assert result["ours_over_bare"] == pytest.approx(statistics.median(b / o for o, b in zip(seconds["ours"], seconds["bare"])))


@pytest.mark.slow
def test_png_files_give_the_in_memory_metrics(digits: ImageSplits, extractor: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = build_generator({"arch": "dcgan", "width": 8}, resolution=16, channels=1, z_dim=32).eval()
    options = {
        "num_samples": 120,
        "isc_splits": 2,
        "kid_subsets": 5,
        "kid_subset_size": 50,
        "batch_size": 50,
        "rng_seed": 2020,
    }  # a partial last batch
    result = eval_paths.compare(generator, digits, 32, CLASSIFIER, extractor, options, 1, tmp_path)
    assert result["metrics_identical"] and result["metrics_ours"] == result["metrics_png"]
    assert result["png_extractor"] == eval_paths.FROM_RGB  # grey PNGs come back as RGB; the adapter takes one channel
    # the check can fail: the same generator's PNGs from other noise score differently
    other = tmp_path / "other"
    other.mkdir()
    eval_paths.write_pngs(generator, 32, {**options, "rng_seed": 1}, other)
    cache = eval_paths.metrics.reference_cache(tmp_path / "cache", digits, eval_paths.FROM_RGB, result["weights_sha256"])
    assert eval_paths.from_files(other, digits, CLASSIFIER, extractor, options, cache) != result["metrics_ours"]


@pytest.mark.slow
def test_train_options_times_the_steps_after_the_warm_up_against_the_defaults() -> None:
    result = train_options.measure(tiny_setup("akdg"), ["channels_last"], 2, 2, 2, CPU, 0)
    variant = result["variants"]["channels_last"]
    assert {len(seconds) for seconds in variant["seconds"].values()} == {2}
    assert variant["speedup"] == pytest.approx(
        statistics.median(d / v for d, v in zip(variant["seconds"]["defaults"], variant["seconds"]["channels_last"]))
    )
    assert all(first > 0 for first in variant["first_steps_seconds"]["channels_last"])
    # another layout, the same updates: the weights end close to the defaults'
    assert 0.0 <= variant["max_abs_weight_difference"] < 1e-2


def test_a_run_stamps_every_step_and_times_only_those_after_the_warm_up() -> None:
    run = train_options.prepare(tiny_setup("vanilla"), "defaults", 5, CPU, 0)()()
    assert len(run.stamps) == 5 and len(run.models) == 2
    wall, cpu = run.steady(2)
    assert wall == pytest.approx(run.stamps[-1][0] - run.stamps[1][0]) and wall > 0 and cpu > 0


def test_host_data_keeps_the_split_off_the_gpu_and_restores_the_rule() -> None:
    fraction = train_options.method_api.DATA_ON_DEVICE_FRACTION
    with train_options.keep_data_on_host(True):
        assert train_options.method_api.DATA_ON_DEVICE_FRACTION == 0.0
    assert train_options.method_api.DATA_ON_DEVICE_FRACTION == fraction


# Snakemake 9's console: a job with a `message:` ("Job N: ..."), one without (its rule block), and their ends.
CONSOLE = """Building DAG of jobs...
[Tue Dec  1 10:26:39 2026]
localrule prepare_data:
    output: results/data/digits.npz
    jobid: 3
    priority: 95
[Tue Dec  1 10:26:40 2026]
Job 10: train student dcgan-w8 with vanilla, seed 1 (progress: results/logs/digits/train/dcgan-w8_vanilla_seed1.log)
Reason: Missing output files: results/models/digits/dcgan-w8/vanilla/seed1.pt
[Tue Dec  1 10:26:52 2026]
Finished jobid: 3 (Rule: prepare_data)
[Tue Dec  1 10:26:53 2026]
Job 7: train the teacher of seed 0, 600 steps on 2 threads (progress: results/logs/digits/train_teacher_seed0.log)
Reason: Missing output files: results/models/digits/teacher/seed0.pt
[Tue Dec  1 10:27:10 2026]
Finished jobid: 10 (Rule: train_student)
[Tue Dec  1 10:29:10 2026]
Finished jobid: 7 (Rule: train_teacher)
"""


def test_dag_budget_reads_the_job_start_order_with_and_without_messages() -> None:
    order = dag_budget.start_order(CONSOLE)
    assert order["start_order"] == ["prepare_data", "train_student", "train_teacher"]
    assert order["jobs_started_before_teacher"] == 2 and order["teacher_start_seconds"] == 14.0


def test_dag_budget_efficiency_is_job_seconds_over_cores_times_wall(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    header = "s\th:m:s\tmax_rss\tcpu_time\n"
    (tmp_path / "a.tsv").write_text(header + "30.0\t0:00:30\t100\t50.0\n")
    (tmp_path / "train" / "b.tsv").write_text(header + "10.0\t0:00:10\t100\t9.0\n")
    figures = dag_budget.efficiency(tmp_path, wall=25.0, cores=2)
    assert figures["benchmarked_jobs"] == 2
    assert figures["efficiency"] == pytest.approx(40 / 50) and figures["cpu_efficiency"] == pytest.approx(59 / 50)
