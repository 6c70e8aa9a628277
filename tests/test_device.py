"""Training runs where the config says: the device it resolves to, bfloat16 autocast, data on the GPU, resume there."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from akdg import checkpoint, datasets, method_api, steps, tables, training
from akdg.architectures import build_generator
from akdg.config import validate_config
from akdg.losses import LOSSES
from akdg.protocol import cpu_model, describe_device
from akdg.registry import AkdgError
from akdg.training import TrainContext, resolve_device, train
from conftest import REPO, copy_project, tiny_train_spec

needs_cxx = pytest.mark.skipif(
    not (shutil.which("c++") and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()),
    reason="torch.compile on the CPU needs a C++ compiler and Python's headers (scripts/test.sh installs g++ on Debian)",
)
CUDA_MARKS = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]


def needs_cuda(test):
    """Mark a test as a GPU test that skips without a CUDA device."""
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
SPEC = tiny_train_spec(seed=5, steps=6, batch_size=8, log_every=3)


def context(
    splits: datasets.ImageSplits,
    device: str,
    *,
    amp: bool = False,
    generator: dict | None = None,
    discriminator: dict | None = None,
    **options: Any,
) -> TrainContext:
    torch.manual_seed(0)
    generator = build_generator(generator or SPEC["generator"], resolution=splits.resolution, channels=splits.channels, z_dim=SPEC["z_dim"])
    return TrainContext(
        generator=generator,
        teacher=None,
        images=torch.from_numpy(splits.x_train),
        z_dim=SPEC["z_dim"],
        batch_size=SPEC["batch_size"],
        loss=LOSSES.get("hinge"),
        discriminator_spec=discriminator or SPEC["discriminator"],
        optimizer=SPEC["optimizer"],
        n_dis=1,
        device=resolve_device(device),
        rng=torch.Generator().manual_seed(0),
        amp=amp,
        **options,
    )


def test_auto_is_the_cpu_where_torch_sees_no_gpu(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_fails_before_any_work_and_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AkdgError, match=r"training.device is 'cuda' but torch sees no CUDA device.*set training.device: auto .* or cpu"):
        steps.train_generator({**SPEC, "device": "cuda"}, tmp_path / "not-read.npz", tmp_path / "g.pt")


def test_the_schema_defaults_to_auto_without_amp_and_rejects_other_devices():
    config = validate_config(copy.deepcopy(TEST_CONFIG))
    assert (config["training"]["device"], config["training"]["amp"]) == ("auto", False)
    bad = copy.deepcopy(TEST_CONFIG)
    bad["training"]["device"] = "gpu"
    with pytest.raises(AkdgError, match="'gpu' is not one of"):
        validate_config(bad)


@pytest.mark.slow
def test_every_training_job_gets_the_device_and_amp_asked_for_not_the_resolved_device(tmp_path: Path):
    """The spec says 'auto' on every machine, so Snakemake's params (and what reruns) do not depend on the GPU."""
    workdir = copy_project(tmp_path)
    (workdir / "amp.yaml").write_text(yaml.safe_dump({"training": {"amp": True}}))
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "all_tables", "--configfile", "config/test.yaml", "amp.yaml"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    specs = [json.loads(match) for match in re.findall(r"akdg train --spec '(\{.*?\})'", result.stdout)]
    assert len(specs) == 1 + 2 * 3 * 2  # the teacher, then 2 students x 3 methods x 2 seeds
    assert {(spec["device"], spec["amp"]) for spec in specs} == {("auto", True)}


def test_the_checkpoint_records_the_device_asked_for_and_the_one_used(digits_npz: Path, tmp_path: Path):
    out, used = tmp_path / "g.pt", resolve_device("auto")
    amp = used.type == "cpu" or torch.cuda.is_bf16_supported(including_emulation=False)  # bfloat16 on the CPU, or a GPU with it
    steps.train_generator({**SPEC, "amp": amp, "steps": 2}, digits_npz, out)  # no 'device': a hand-written spec gets the schema's default
    recorded = checkpoint.read_checkpoint(out)["meta"]["training"]
    assert (recorded["device"], recorded["amp"]) == ("auto", amp)
    assert recorded["resolved_device"] == describe_device(used)
    assert all(value.device.type == "cpu" for value in torch.load(out, weights_only=True)["state_dict"].values())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("amp", [False, True])
def test_amp_runs_forward_passes_in_bfloat16_and_backward_passes_outside_autocast(digits: datasets.ImageSplits, device: str, amp: bool):
    if amp and device == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no native bfloat16")
    ctx = context(digits, device, amp=amp)
    forward_dtypes, autocast_in_backward = set(), set()

    def record(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        forward_dtypes.add(output.dtype)
        if output.requires_grad:  # the generator's own update: note whether its backward pass runs under autocast
            output.register_hook(lambda grad: autocast_in_backward.add(torch.is_autocast_enabled(ctx.device.type)))

    ctx.generator.register_forward_hook(record)
    history = train("vanilla", {}, ctx, steps=2, log_every=1)
    assert forward_dtypes == {torch.bfloat16 if amp else torch.float32}
    assert autocast_in_backward == {False}
    assert all(parameter.dtype == torch.float32 and parameter.device.type == device for parameter in ctx.generator.parameters())
    assert ctx.images.device.type == device  # the digits fit any GPU: drawn there
    assert len(history) == 2


@pytest.mark.parametrize("device", DEVICES)
def test_a_resumed_run_continues_every_random_stream(digits_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str):
    """A plugin method may draw from torch's global generators (CPU, and the GPU's on CUDA): resuming restores them too."""
    from baselines.vanilla import Vanilla

    original, calls = Vanilla.train_step, {"steps": 0, "poisoned": 5}

    def drawing(self: Vanilla) -> dict[str, float]:
        losses = original(self)
        calls["steps"] += 1
        draws = {"cpu_draw": float(torch.rand(())), "device_draw": float(torch.rand((), device=self.ctx.device))}
        return {**losses, **draws, **({"d": float("nan")} if calls["steps"] == calls["poisoned"] else {})}

    monkeypatch.setattr(Vanilla, "train_step", drawing)
    spec, resumed, whole = {**SPEC, "device": device}, tmp_path / "resumed.pt", tmp_path / "whole.pt"
    with pytest.raises(AkdgError, match="became nan at step 5"):
        steps.train_generator(spec, digits_npz, resumed, checkpoint_every=2)  # leaves the state of step 4
    calls["poisoned"] = None
    steps.train_generator(spec, digits_npz, resumed, checkpoint_every=2)
    steps.train_generator(spec, digits_npz, whole)
    (resumed_meta, resumed_weights), (whole_meta, whole_weights) = (
        (payload["meta"]["training"], payload["state_dict"]) for payload in map(checkpoint.read_checkpoint, (resumed, whole))
    )
    assert resumed_meta["resolved_device"].startswith(device)
    for key in ("cpu_draw", "device_draw"):
        assert resumed_meta["final_losses"][key] == whole_meta["final_losses"][key], f"the {key} stream was not restored"
    for key, value in resumed_weights.items():
        if device == "cpu":
            assert torch.equal(value, whole_weights[key]), key
        else:  # CUDA kernels may reorder float sums: the same run to rounding, not to the bit
            torch.testing.assert_close(value, whole_weights[key], rtol=1e-4, atol=1e-5)


def test_a_state_of_the_previous_format_is_named_with_the_fix(tmp_path: Path):
    from akdg.resume import Resumable

    path = tmp_path / "g.pt.state"
    torch.save({"format": "akdg-train-state-v1", "identity": "x", "step": 3}, path)
    with pytest.raises(AkdgError, match=r"format 'akdg-train-state-v1', not 'akdg-train-state-v2'.*delete it to train from step 1"):
        Resumable(path, "x", 3).load()


@needs_cuda
def test_on_cuda_the_split_is_drawn_on_the_gpu_or_copied_per_batch_alike(digits: datasets.ImageSplits, monkeypatch: pytest.MonkeyPatch):
    on_device = context(digits, "cuda")
    monkeypatch.setattr(method_api, "DATA_ON_DEVICE_FRACTION", 0.0)  # as if the split did not fit
    on_host = context(digits, "cuda")
    assert on_device.images.is_cuda and not on_host.images.is_cuda
    for _ in range(3):
        from_device, from_host = on_device.real_batch(), on_host.real_batch()
        assert from_device.is_cuda and from_host.is_cuda and torch.equal(from_device, from_host)


@needs_cuda
def test_auto_is_cuda_where_there_is_one():
    assert resolve_device("auto").type == "cuda"


def conv_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter for parameter in model.parameters() if parameter.dim() == 4]


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_trains_nhwc_saves_nchw_and_computes_the_same_losses(digits: datasets.ImageSplits, device: str):
    inputs = []
    eager_ctx = context(digits, device)
    eager = train("vanilla", {}, eager_ctx, steps=3, log_every=1)
    ctx = context(digits, device, channels_last=True)  # the same seed for G, D (drawn when train builds it) and batches

    def record(module: torch.nn.Module, args: tuple) -> None:
        inputs.append(args[0].is_contiguous(memory_format=torch.channels_last))

    original = ctx.new_discriminator

    def hooked() -> torch.nn.Module:
        discriminator = original()
        discriminator.register_forward_pre_hook(record)
        assert all(weight.is_contiguous(memory_format=torch.channels_last) for weight in conv_weights(discriminator))
        return discriminator

    ctx.new_discriminator = hooked
    assert all(weight.is_contiguous(memory_format=torch.channels_last) for weight in conv_weights(ctx.generator))
    nhwc = train("vanilla", {}, ctx, steps=3, log_every=1)
    assert inputs and all(inputs)  # real and generated batches reach D in NHWC
    assert all(weight.is_contiguous() for weight in conv_weights(ctx.generator))  # what the checkpoint gets
    for ours, reference in zip(nhwc, eager):  # the same arithmetic in another layout: equal up to summation order
        assert ours.keys() == reference.keys()
        assert all(ours[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5) for key in ours)


@pytest.mark.slow
@needs_cxx
def test_compile_trains_compiled_models_to_the_eager_losses(digits: datasets.ImageSplits):
    torch.compiler.reset()
    eager = train("vanilla", {}, context(digits, "cpu"), steps=3, log_every=1)
    ctx = context(digits, "cpu", compile="default")  # the same seed for G, D (drawn when train builds it) and batches
    compiled = train("vanilla", {}, ctx, steps=3, log_every=1)
    assert all(getattr(model, "_compiled_call_impl", None) is not None for model in (ctx.generator, *ctx.discriminators))
    for ours, reference in zip(compiled, eager):  # fused kernels may round differently, nothing more
        assert all(ours[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5) for key in ours)
    assert set(ctx.generator.state_dict()) == set(context(digits, "cpu").generator.state_dict())  # checkpoints keep their keys


def test_compile_leaves_growing_models_eager_and_rejects_unknown_modes(digits: datasets.ImageSplits, caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO", logger="akdg.training")
    ctx = context(digits, "cpu", compile="default", generator={"arch": "pggan", "width": 8}, discriminator={"arch": "pggan", "width": 8})
    ctx.new_discriminator()
    training.compile_models(ctx)
    assert all(getattr(model, "_compiled_call_impl", None) is None for model in (ctx.generator, *ctx.discriminators))
    assert "grows during training and stays eager" in caplog.text
    with pytest.raises(AkdgError, match=r"training.compile is 'fast'; set it to one of off, default, reduce-overhead"):
        context(digits, "cpu", compile="fast")
    bad = copy.deepcopy(TEST_CONFIG)
    bad["training"]["compile"] = "fast"
    with pytest.raises(AkdgError, match="'fast' is not one of"):
        validate_config(bad)


@pytest.mark.parametrize("device", DEVICES)
def test_measure_cost_times_the_generators_on_the_speed_device_and_says_which(digits_npz: Path, tmp_path: Path, device: str):
    spec = {
        "generators": {"teacher": {"arch": "sngan", "width": 4}, "s": SPEC["generator"]},
        "z_dim": 8,
        "speed": {"batch_size": 4, "min_run_time": 0.01, "device": device},
    }
    steps.measure_cost(spec, digits_npz, tmp_path / "cost.json", threads=1)
    figures = json.loads((tmp_path / "cost.json").read_text())
    assert {cost["speed_device"] for cost in figures.values()} == {describe_device(resolve_device(device))}
    assert {cost["speed_processor"] for cost in figures.values()} == {cpu_model()}
    line = tables.speed_line(figures["s"])
    assert f"on {describe_device(resolve_device(device))}; CPU {cpu_model()}, 1 threads" in line and "at batch 4" in line


def test_measure_cost_on_cuda_without_one_names_the_fix(digits_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = {"generators": {"s": SPEC["generator"]}, "z_dim": 8, "speed": {"batch_size": 4, "min_run_time": 0.01, "device": "cuda"}}
    with pytest.raises(AkdgError, match="torch sees no CUDA device"):
        steps.measure_cost(spec, digits_npz, tmp_path / "cost.json", threads=1)
    assert not (tmp_path / "cost.json").exists()
