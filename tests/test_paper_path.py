"""The paper configs' code path, end to end in miniature: what the CPU default never exercises.

A tiny grid through the real Snakemake DAG with everything the paper configs use and the default
does not: RGB data from an .npz (a dataset that needs a loader, not sklearn), a PGGAN teacher that
grows during training, method variants with their own batch sizes, the joint and lit baselines,
torch-fidelity's Inception-v3 (stand-in weights: only they differ from a real run) with the
reference cache, per-job resources, and a user's plug-in method that every job must know.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_project, standin_weights

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

RESOLUTION = 16
LABELS = ["vanilla-b4", "vanilla-b8", "joint", "akdg", "l1"]


@pytest.fixture(scope="module")
def paper_path_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_project(tmp_path_factory.mktemp("paper_path"))
    rng = np.random.default_rng(0)
    images = np.zeros((16, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)  # NHWC, as image libraries write them
    for index, image in enumerate(images):  # coloured squares at random places: structure a GAN can learn
        top, left = rng.integers(0, RESOLUTION // 2, size=2)
        image[top : top + 6, left : left + 6] = rng.integers(64, 256, size=3)
        image[..., index % 3] += 20
    np.savez(workdir / "squares.npz", images=images)
    weights = standin_weights(workdir / "standin-inception.pth", seed=0)
    config = {
        "plugins": ["akdg_example_plugin"],
        "outdir": "results",
        "dataset": {"name": "npz", "path": "squares.npz", "resolution": RESOLUTION, "channels": 3, "test_fraction": 0.25, "split_seed": 0},
        "z_dim": 8,
        "loss": "hinge",
        "teacher": {
            "generator": {"arch": "pggan", "width": 16},
            "discriminator": {"arch": "pggan", "width": 16},
            "steps": 6,
            "seed": 0,
            "ema_decay": 0.5,
            "training": {"batch_size": 4, "optimizer": {"betas": [0.0, 0.99]}},
        },
        "students": [{"arch": "sngan", "width": 4}],
        "student_discriminator": {"arch": "dcgan", "width": 4},
        "methods": {
            "vanilla-b4": {"method": "vanilla", "training": {"batch_size": 4}},
            "vanilla-b8": {"method": "vanilla", "training": {"batch_size": 8}},
            "joint": {"a": 0.3},
            "akdg": {"kd_weight": 1.0},
            "l1": {"method": "example-l1"},
        },
        "seeds": [0, 1],
        "training": {"steps": 3, "batch_size": 4, "n_dis": 1, "log_every": 1, "ema_decay": 0.0},
        "evaluation": {
            "feature_extractor": "inception-v3-compat",
            "inception_weights": str(weights),
            "allow_nonstandard_inception": True,  # stand-in weights, on purpose
            "num_samples": 4,
            "isc_splits": 2,
            "kid_subsets": 2,
            "kid_subset_size": 4,
            "batch_size": 4,
            "rng_seed": 0,
        },
        "speed": {"batch_size": 4, "min_run_time": 0.01},
        "resources": {"student": {"gpu": 0, "mem_mb": 1000, "runtime": 5}},
    }
    (workdir / "grid.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "tests" / "plugins"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "all_tables", "--configfile", "grid.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def test_every_label_of_the_grid_reaches_the_table(paper_path_run: Path):
    table = pd.read_csv(paper_path_run / "results" / "tables" / "npz.csv")
    assert set(LABELS) <= set(table["method"]), table["method"].tolist()
    trained = table[table["kind"] == "trained"]
    assert trained["fid"].notna().all() and (trained["fid"] > 0).all()


def test_variants_trained_with_their_own_batch_sizes_and_methods(paper_path_run: Path):
    runs = paper_path_run / "results" / "runs" / "npz" / "sngan-w4"
    training = {label: json.loads((runs / label / "seed0.json").read_text())["protocol"]["training"] for label in LABELS}
    assert (training["vanilla-b4"]["method"], training["vanilla-b4"]["batch_size"]) == ("vanilla", 4)
    assert (training["vanilla-b8"]["method"], training["vanilla-b8"]["batch_size"]) == ("vanilla", 8)
    assert training["l1"]["method"] == "example-l1" and training["l1"]["teacher_sha256"]
    assert training["akdg"]["teacher_training"]["generator"] == {"arch": "pggan", "width": 16}


def test_inception_protocol_and_reference_cache_in_every_run(paper_path_run: Path):
    results = paper_path_run / "results"
    standin_sha = json.loads((results / "models" / "npz" / "extractor.json").read_text())["weights_sha256"]
    stats = json.loads((results / "cache" / "npz" / "reference.json").read_text())
    for path in (results / "runs" / "npz").rglob("*.json"):
        protocol = json.loads(path.read_text())["protocol"]
        assert protocol["feature_extractor"]["name"] == "inception-v3-compat"
        assert protocol["feature_extractor"]["weights_sha256"] == standin_sha
        assert protocol["reference_cache"]["key"] == stats["key"] and protocol["reference_cache"]["hit"], path
        assert protocol["dataset"]["channels"] == 3
        assert protocol["feature_extractor"]["weights_check"].startswith("non-standard Inception weights")
    assert "non-standard Inception weights" in (results / "tables" / "npz.md").read_text()


def test_claims_table_is_written_for_the_grid(paper_path_run: Path):
    claims = pd.read_csv(paper_path_run / "results" / "tables" / "npz_claims.csv")
    assert set(claims["claim"]) == {1, 2, 3, 4, 5}
    # no 'mse' label here: claims 1 and 3 and the MSE half of 4 say so rather than vanish
    assert (claims.loc[claims["claim"].isin([1, 3]), "verdict"] == "not tested").all()
