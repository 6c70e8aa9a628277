"""aggregate: paper columns and ours − paper for the paper's datasets, none for others, claims files beside."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy.stats import ttest_ind

from akdg.claims import HOLDS, NOT_TESTED
from akdg.paper import load_paper, match_paper, paper_datasets
from akdg.registry import AkdgError
from akdg.tables import aggregate, load_runs

REPO = Path(__file__).resolve().parent.parent
# Real run JSONs that git carries (the default grid's results/runs is a DVC output, absent from a clone).
COMMITTED_RUNS = REPO / "results" / "cpu_repro" / "runs" / "digits"
DIGITS_RUNS = sorted(COMMITTED_RUNS.rglob("*.json"))
TEMPLATE = json.loads((COMMITTED_RUNS / "dcgan-w14" / "akdg" / "seed0.json").read_text())
TEACHER_COST = {"layers": 8, "params": 4_000_000, "mult_adds": 800_000_000, "images_per_s": 50.0}
STUDENT_COST = {"layers": 5, "params": 2_630_000, "mult_adds": 229_000_000, "images_per_s": 400.0}
# The paper datasets are scored with Inception, whose protocol has no test accuracy.
INCEPTION = {
    "name": "inception-v3-compat",
    "weights_sha256": "ab" * 32,
    "features": {"is": "logits_unbiased", "fid": "2048", "kid": "2048"},
}


def write_run(
    directory: Path,
    dataset: str,
    role: str,
    label: str,
    arch: str | None,
    method: str,
    base: str | None,
    seed: int,
    fid: float,
    is_mean: float,
    cost: dict[str, float] | None,
) -> Path:
    """A run JSON as the evaluate step writes it, from the committed digits one with these values."""
    result = copy.deepcopy(TEMPLATE)
    kind = {"untrained": "untrained", "": "real"}.get(method, "trained")
    result["run"] = {
        "dataset": dataset,
        "role": role,
        "generator_label": label,
        "generator": {"arch": arch, "width": 8} if arch else None,
        "method": method,
        "seed": seed if arch else None,
        "kind": kind,
    }
    result["metrics"] = {"fid": fid, "is_mean": is_mean, "is_std": 0.1, "kid_mean": 1.0, "kid_std": 0.1}
    for scored_elsewhere in ("metrics_last", "curve"):  # the template's EMA run has them; a test that needs them adds its own
        result.pop(scored_elsewhere, None)
    result["cost"] = cost
    result["protocol"]["dataset"]["name"] = dataset
    if dataset != "digits":
        result["protocol"]["feature_extractor"] = INCEPTION
    result["protocol"]["training"] = {**result["protocol"]["training"], "method": base} if base else None
    path = directory / dataset / label / method / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path


def grid(directory: Path, dataset: str, methods: dict[str, tuple[str, list[float]]], teacher_arch: str = "sngan") -> list[Path]:
    """Teacher, an untrained and trained dcgan student ({label: (base, fid per seed)}), and the real-data row."""
    paths = [
        write_run(directory, dataset, "teacher", "teacher", teacher_arch, "vanilla", "vanilla", 0, 15.0, 8.0, TEACHER_COST),
        write_run(directory, dataset, "student", "dcgan-w8", "dcgan", "untrained", None, 0, 300.0, 1.0, STUDENT_COST),
        write_run(directory, dataset, "reference", "", None, "", None, 0, 2.0, 11.0, None),
    ]
    for label, (base, fids) in methods.items():
        for seed, fid in enumerate(fids):
            paths.append(
                write_run(directory, dataset, "student", "dcgan-w8", "dcgan", label, base, seed, fid, 7.0 + seed / 10, STUDENT_COST)
            )
    return paths


def run_aggregate(paths: list[Path], tmp_path: Path, dataset: str, methods: list[str]) -> tuple[pd.DataFrame, Any]:
    return aggregate(paths, methods, tmp_path / "tables", tmp_path / "metrics", dataset)


def markdown_rows(path: Path) -> pd.DataFrame:
    """The first Markdown table of a file, cells stripped."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not set(line) <= set("|:- ")]
    return pd.DataFrame(table[1:], columns=table[0])


def test_paper_data_has_every_number_of_tables_one_and_two() -> None:
    paper = load_paper()
    assert paper_datasets(paper) == ["cifar10", "lsun_bedroom"]
    assert (paper["source"] == "Table I").sum() == 7 and (paper["source"] == "Table II").sum() == 5
    keyed = paper.set_index(["dataset", "role", "arch", "method"])
    assert keyed.loc[("cifar10", "student", "mlp", "mse"), "fid"] == 108.92
    assert keyed.loc[("cifar10", "teacher", "sngan", ""), ["is_mean", "is_std", "mult_adds"]].tolist() == [8.49, 0.13, 793e6]
    assert keyed.loc[("lsun_bedroom", "teacher", "pggan", ""), "mult_adds"] == 8.9e9
    assert keyed.loc[("lsun_bedroom", "student", "dcgan", "vanilla-b2048"), "fid"] == 37.89
    assert paper.loc[paper["dataset"] == "lsun_bedroom", "is_mean"].isna().all()


def test_cifar10_tables_show_paper_numbers_and_differences(tmp_path: Path) -> None:
    paths = grid(
        tmp_path / "runs", "cifar10", {"vanilla": ("vanilla", [33.0, 35.0]), "mse": ("mse", [45.0, 47.0]), "akdg": ("akdg", [28.0, 29.0])}
    )
    run_aggregate(paths, tmp_path, "cifar10", ["vanilla", "mse", "akdg"])
    csv = pd.read_csv(tmp_path / "tables" / "cifar10.csv").set_index("row")
    assert csv.loc["dcgan-w8 vanilla", "paper_fid"] == 31.58
    assert csv.loc["dcgan-w8 vanilla", "fid_minus_paper"] == pytest.approx(34.0 - 31.58)
    assert csv.loc["dcgan-w8 akdg", "is_mean_minus_paper"] == pytest.approx(7.05 - 7.05)
    assert csv.loc["Teacher (sngan)", "params_minus_paper"] == pytest.approx(4_000_000 - 4_100_000)
    assert csv.loc["Teacher (sngan)", "paper_source"] == "Table I"
    assert csv.loc[["dcgan-w8 untrained", "Real data (test split)"], "paper_fid"].isna().all()

    table = markdown_rows(tmp_path / "tables" / "cifar10.md").set_index("Method")
    columns = list(table.columns)
    for cell in ("layers", "params", "mult-adds", "IS", "FID"):
        assert columns[columns.index(cell) + 1 : columns.index(cell) + 3] == [f"{cell} paper", f"{cell} Δ"]
    assert table.loc["dcgan-w8 vanilla", ["FID", "FID paper", "FID Δ"]].tolist() == ["34.00 ± 1.41", "31.58", "+2.42"]
    assert table.loc["dcgan-w8 mse", ["IS paper", "IS Δ"]].tolist() == ["6.45 (0.07)", "+0.60"]
    assert table.loc["Teacher (sngan)", ["params paper", "params Δ", "mult-adds paper", "layers Δ"]].tolist() == [
        "4.1M",
        "-100.00K",
        "793M",
        "+0",
    ]
    assert table.loc["Real data (test split)", ["FID paper", "FID Δ"]].tolist() == ["–", "–"]
    assert table.loc["dcgan-w8 untrained", "IS paper"] == "–"
    latex = (tmp_path / "tables" / "cifar10.tex").read_text()
    assert "FID paper" in latex and "31.58" in latex and "+2.42" in latex
    notes = (tmp_path / "tables" / "cifar10.md").read_text()
    assert "Table I of Tsunashima" in notes and "FID on '2048'" in notes and "test accuracy" not in notes


def test_lsun_tables_have_only_the_columns_the_paper_reports(tmp_path: Path) -> None:
    methods = {
        "vanilla-b64": ("vanilla", [40.0, 42.0]),
        "vanilla-b2048": ("vanilla", [36.0, 37.0]),
        "mse": ("mse", [90.0, 95.0]),
        "akdg": ("akdg", [26.0, 27.0]),
    }
    paths = grid(tmp_path / "runs", "lsun_bedroom", methods, teacher_arch="pggan")
    _, claims = run_aggregate(paths, tmp_path, "lsun_bedroom", list(methods))
    table = markdown_rows(tmp_path / "tables" / "lsun_bedroom.md").set_index("Method")
    assert "FID paper" in table.columns and "IS paper" not in table.columns and "IS Δ" not in table.columns
    assert table.loc["dcgan-w8 vanilla-b2048", ["FID paper", "FID Δ"]].tolist() == ["37.89", "-1.39"]
    assert table.loc["Teacher (pggan)", "mult-adds paper"] == "8.9B"
    vanilla_rows = claims.rows[claims.rows["claim"] == 2]
    assert list(vanilla_rows["comparison"]) == ["akdg vs vanilla-b64", "akdg vs vanilla-b2048"]
    assert list(vanilla_rows["verdict"]) == [HOLDS, HOLDS]


def test_every_trained_row_states_its_batch_size_and_the_images_it_saw(tmp_path: Path) -> None:
    """LSUN's batch-2048 rows see 32x the images of the batch-64 ones in as many steps: the table says so."""
    methods = {
        "vanilla-b64": ("vanilla", [40.0, 42.0]),
        "vanilla-b2048": ("vanilla", [36.0, 37.0]),
        "mse-b2048": ("mse", [80.0, 81.0]),
        "akdg-b2048": ("akdg", [25.0, 26.0]),
    }
    paths = grid(tmp_path / "runs", "lsun_bedroom", methods, teacher_arch="pggan")
    steps = 1000
    for path in paths:
        result = json.loads(path.read_text())
        training, label = result["protocol"]["training"], result["run"]["method"]
        if training is None:
            continue
        batch = 2048 if label.endswith("-b2048") else 64
        real = 0 if training["method"] == "mse" else steps * batch  # n_dis 1; MSE draws no real image
        result["protocol"]["training"] = {
            **training,
            "steps": steps,
            "batch_size": batch,
            "images_seen": steps * batch,
            "real_images_seen": real,
        }
        path.write_text(json.dumps(result))
    run_aggregate(paths, tmp_path, "lsun_bedroom", list(methods))
    table = markdown_rows(tmp_path / "tables" / "lsun_bedroom.md").set_index("Method")
    assert table.loc["dcgan-w8 vanilla-b64", ["batch", "images seen"]].tolist() == ["64", "64.00K"]
    assert table.loc["dcgan-w8 vanilla-b2048", ["batch", "images seen"]].tolist() == ["2048", "2.05M"]
    assert table.loc["dcgan-w8 akdg-b2048", ["batch", "images seen"]].tolist() == ["2048", "2.05M"]
    assert table.loc["Teacher (pggan)", "batch"] == "64"
    assert table.loc[["dcgan-w8 untrained", "Real data (test split)"], ["batch", "images seen"]].to_numpy().tolist() == [["–", "–"]] * 2
    csv = pd.read_csv(tmp_path / "tables" / "lsun_bedroom.csv").set_index("row")
    assert csv.loc["dcgan-w8 mse-b2048", ["images_seen", "real_images_seen"]].tolist() == [2_048_000, 0]
    assert csv.loc["dcgan-w8 vanilla-b2048", "real_images_seen"] == 2_048_000


def test_the_csv_keeps_the_last_weights_scores_beside_the_emas_the_table_reports(tmp_path: Path) -> None:
    """Runs with metrics_last give *_last columns (their seed mean); runs without one give NaN there."""
    paths = grid(tmp_path / "runs", "digits", {"akdg": ("akdg", [28.0, 30.0])})
    last_fids = {0: 40.0, 1: 44.0}
    for path in paths:
        result = json.loads(path.read_text())
        if result["run"]["method"] == "akdg":
            seed = result["run"]["seed"]
            result["metrics_last"] = {**result["metrics"], "fid": last_fids[seed], "is_mean": 5.0 + seed, "precision": 0.5, "recall": 0.25}
            path.write_text(json.dumps(result))
    run_aggregate(paths, tmp_path, "digits", ["akdg"])
    csv = pd.read_csv(tmp_path / "tables" / "digits.csv").set_index("row")
    assert csv.loc["dcgan-w8 akdg", ["fid", "fid_last", "is_mean_last", "precision_last", "recall_last"]].tolist() == [
        29.0,
        42.0,
        5.5,
        0.5,
        0.25,
    ]
    assert csv.loc[["Teacher (sngan)", "dcgan-w8 untrained", "Real data (test split)"], "fid_last"].isna().all()
    table = markdown_rows(tmp_path / "tables" / "digits.md").set_index("Method")
    assert table.loc["dcgan-w8 akdg", "FID"] == "29.00 ± 1.41"  # the EMA's, not the last weights'
    assert "*_last columns are the raw weights at its last training step" in (tmp_path / "tables" / "digits.md").read_text()


def test_digits_has_no_paper_columns(tmp_path: Path) -> None:
    paths = grid(tmp_path / "runs", "digits", {"vanilla": ("vanilla", [33.0, 35.0]), "akdg": ("akdg", [28.0, 29.0])})
    run_aggregate(paths, tmp_path, "digits", ["vanilla", "akdg"])
    header = markdown_rows(tmp_path / "tables" / "digits.md").columns
    assert list(header) == [
        "Method",
        "layers",
        "params",
        "mult-adds",
        "IS",
        "FID",
        "KID",
        "precision",
        "recall",
        "images/s",
        "batch",
        "images seen",
        "seeds",
    ]
    assert not [name for name in pd.read_csv(tmp_path / "tables" / "digits.csv").columns if "paper" in name]
    assert "paper" not in (tmp_path / "tables" / "digits.tex").read_text()


def test_the_teacher_row_spans_every_teacher_seed_and_each_run_names_its_teacher(tmp_path: Path) -> None:
    """Two teachers (FID 15 and 17): one row, mean ± std over them with n = 2; the CSV lists the teachers each row's
    runs used, and every teacher keeps its own DVC metrics file, as every student seed does."""
    paths = grid(tmp_path / "runs", "digits", {"vanilla": ("vanilla", [33.0, 35.0]), "akdg": ("akdg", [28.0, 29.0])})
    paths.append(write_run(tmp_path / "runs", "digits", "teacher", "teacher", "sngan", "vanilla", "vanilla", 1, 17.0, 8.0, TEACHER_COST))
    for path in paths:
        result = json.loads(path.read_text())
        if result["run"]["role"] == "teacher" or result["run"]["method"] == "akdg":
            result["run"]["teacher_seed"] = result["run"]["seed"]  # AKDG seed i distilled teacher i
            path.write_text(json.dumps(result))
    run_aggregate(paths, tmp_path, "digits", ["vanilla", "akdg"])
    table = markdown_rows(tmp_path / "tables" / "digits.md").set_index("Method")
    assert table.loc["Teacher (sngan)", "FID"] == f"16.00 ± {pd.Series([15.0, 17.0]).std():.2f}"
    assert table.loc["Teacher (sngan)", "seeds"] == "2"
    csv = pd.read_csv(tmp_path / "tables" / "digits.csv", dtype={"teacher_seeds": str}).fillna({"method": "", "teacher_seeds": ""})
    assert dict(zip(csv["role"] + "/" + csv["method"], csv["teacher_seeds"])) == {
        "teacher/vanilla": "0 1", "student/untrained": "", "student/vanilla": "", "student/akdg": "0 1", "reference/": "",
    }  # fmt: skip
    assert {path.name for path in (tmp_path / "metrics" / "teacher").iterdir()} == {"seed0.json", "seed1.json"}


def test_missing_method_is_reported_not_tested(tmp_path: Path) -> None:
    paths = grid(tmp_path / "runs", "cifar10", {"vanilla": ("vanilla", [33.0, 35.0]), "akdg": ("akdg", [28.0, 29.0])})
    _, claims = run_aggregate(paths, tmp_path, "cifar10", ["vanilla", "akdg"])
    written = pd.read_csv(tmp_path / "tables" / "cifar10_claims.csv")
    first = written[written["claim"] == 1].iloc[0]
    assert first["verdict"] == NOT_TESTED and "mse" in first["reason"]
    assert claims.summary.set_index("claim").loc[1, "verdict"] == NOT_TESTED
    assert "not tested" in (tmp_path / "tables" / "cifar10_claims.md").read_text()


def test_runs_of_another_dataset_are_refused(tmp_path: Path) -> None:
    paths = grid(tmp_path / "runs", "cifar10", {"akdg": ("akdg", [28.0, 29.0])})
    with pytest.raises(AkdgError, match="--dataset"):
        run_aggregate(paths, tmp_path, "digits", ["akdg"])


def test_match_paper_by_family_and_label() -> None:
    summary = pd.DataFrame(
        {
            "role": ["teacher", "student", "student", "student"],
            "arch": ["resnet", "mlp", "mlp", "dcgan"],
            "method": ["vanilla", "akdg", "akdg-w2", "akdg"],
        }
        | {name: [1.0] * 4 for name in ("layers", "params", "mult_adds", "is_mean", "fid")}
    )
    matched = match_paper(summary, "cifar10")
    assert matched["paper_fid"].tolist()[:2] == [16.50, 53.73] and pd.isna(matched["paper_fid"].iloc[2])
    assert matched["paper_fid"].iloc[3] == 29.52
    assert match_paper(summary, "digits").columns.empty


def test_committed_digits_runs_aggregate_with_claims(tmp_path: Path) -> None:
    assert len(DIGITS_RUNS) > 10, "the committed digits run JSONs are missing"
    runs, claims = run_aggregate(DIGITS_RUNS, tmp_path, "digits", ["vanilla", "mse", "akdg"])
    names = sorted(path.name for path in (tmp_path / "tables").iterdir())
    assert names == ["digits.csv", "digits.md", "digits.tex", "digits_claims.csv", "digits_claims.md"]
    assert claims.summary["claim"].tolist() == [1, 2, 3, 4, 5]
    students = sorted(set(runs.loc[(runs["role"] == "student") & (runs["kind"] == "trained"), "student"]))
    row = claims.rows[(claims.rows["claim"] == 1) & (claims.rows["student"] == students[0])].iloc[0]
    loaded = load_runs(DIGITS_RUNS)
    fid = {method: loaded.loc[(loaded["student"] == students[0]) & (loaded["method"] == method), "fid"] for method in ("akdg", "mse")}
    assert row["p_value"] == pytest.approx(ttest_ind(fid["akdg"], fid["mse"], equal_var=False, alternative="less").pvalue)
    markdown = (tmp_path / "tables" / "digits_claims.md").read_text()
    assert "# digits: the paper's claims" in markdown and "alpha = 0.025 per direction" in markdown


@pytest.mark.parametrize("loaded", [True, False])
def test_a_loaded_machine_is_warned_of_under_the_table_and_the_claims(tmp_path: Path, loaded: bool) -> None:
    measurement = {
        "loaded": loaded, "load_average_1min_before": 5.25, "load_average_1min_after": 4.0, "cpu_count": 4, "threads": 4,
        "other_runnable_median": 3.0, "cpu_per_wall": 1.5,
    }  # fmt: skip
    speed = {
        "speed_batch_size": 64,
        "speed_rounds": 10,
        "speed_min_run_time": 0.05,
        "speed_device": "cpu",
        "speed_processor": "x86",
        "speed_threads": 4,
    }
    teacher_cost = {**TEACHER_COST, **speed, "images_per_s_rounds": [50.0, 48.0, 52.0], "measurement": measurement}
    student_cost = {
        **STUDENT_COST,
        **speed,
        "images_per_s_rounds": [400.0, 410.0, 380.0],
        "throughput_ratio_rounds": [8.0, 410 / 48, 380 / 52],
        "measurement": measurement,
    }
    paths = [
        write_run(tmp_path / "runs", "digits", "teacher", "teacher", "sngan", "vanilla", "vanilla", 0, 15.0, 8.0, teacher_cost),
        *(
            write_run(tmp_path / "runs", "digits", "student", "dcgan-w8", "dcgan", "akdg", "akdg", seed, 20.0 + seed, 7.0, student_cost)
            for seed in range(2)
        ),
    ]
    _, claims = run_aggregate(paths, tmp_path, "digits", ["akdg"])
    table, claims_md = (tmp_path / "tables" / "digits.md").read_text(), (tmp_path / "tables" / "digits_claims.md").read_text()
    assert "medians over 10 interleaved rounds" in table
    warning = "warning: the machine was loaded while speed was measured (1-minute load average 5.25 before and 4.00 after, on 4 cores"
    assert (warning in table, warning in claims_md) == (loaded, loaded)
    assert "rerun measure-cost on an idle machine" in table if loaded else "warning" not in table + claims_md
    assert claims.rows.set_index("metric").loc["images/s", "verdict"] == HOLDS


def prepared_by(paths: list[Path], loader: str) -> list[Path]:
    """Runs whose protocol names the dataset loader ``loader`` (write_run names the label's), as under a dataset.label."""
    for path in paths:
        result = json.loads(path.read_text())
        result["protocol"]["dataset"]["name"] = loader
        path.write_text(json.dumps(result))
    return paths


def test_a_relabelled_paper_dataset_keeps_its_paper_columns(tmp_path: Path) -> None:
    paths = prepared_by(
        grid(tmp_path / "runs", "cifar10-rerun", {"vanilla": ("vanilla", [33.0, 35.0]), "akdg": ("akdg", [28.0, 29.0])}), "cifar10"
    )
    run_aggregate(paths, tmp_path, "cifar10-rerun", ["vanilla", "akdg"])
    assert sorted(path.name for path in (tmp_path / "tables").iterdir()) == [
        "cifar10-rerun.csv", "cifar10-rerun.md", "cifar10-rerun.tex", "cifar10-rerun_claims.csv", "cifar10-rerun_claims.md",
    ]  # fmt: skip
    csv = pd.read_csv(tmp_path / "tables" / "cifar10-rerun.csv").set_index("row")
    assert csv.loc["dcgan-w8 vanilla", "paper_fid"] == 31.58
    table = markdown_rows(tmp_path / "tables" / "cifar10-rerun.md").set_index("Method")
    assert table.loc["dcgan-w8 akdg", ["FID paper", "FID Δ"]].tolist() == ["29.52", "-1.02"]


def test_two_datasets_of_one_loader_keep_separate_tables(tmp_path: Path) -> None:
    for label, fid in (("faces", 30.0), ("textures", 60.0)):
        paths = prepared_by(grid(tmp_path / "runs", label, {"akdg": ("akdg", [fid, fid + 1])}), "npz")
        aggregate(paths, ["akdg"], tmp_path / "tables", tmp_path / "metrics" / label, label)
    for label, fid in (("faces", 30.5), ("textures", 60.5)):
        csv = pd.read_csv(tmp_path / "tables" / f"{label}.csv").set_index("row")
        assert csv.loc["dcgan-w8 akdg", "fid"] == pytest.approx(fid) and not [name for name in csv.columns if "paper" in name]
        assert pd.read_csv(tmp_path / "tables" / f"{label}_claims.csv")["dataset"].unique().tolist() == [label]
    assert len(list((tmp_path / "tables").iterdir())) == 2 * 5


def test_runs_of_two_loaders_under_one_label_are_refused(tmp_path: Path) -> None:
    paths = grid(tmp_path / "runs", "faces", {"akdg": ("akdg", [28.0, 29.0])})
    prepared_by(paths[:1], "npz")
    with pytest.raises(AkdgError, match=r"prepared by the dataset loaders \['faces', 'npz'\]"):
        run_aggregate(paths, tmp_path, "faces", ["akdg"])


def test_rows_are_grouped_by_family_then_size_then_method(tmp_path: Path) -> None:
    """A sweep's widths sort by params, not by name (dcgan-w16 after dcgan-w8); methods in config order within a size."""
    from test_sizes import size_grid

    run_aggregate(size_grid(tmp_path / "runs"), tmp_path, "digits", ["vanilla", "mse", "akdg"])
    rows = markdown_rows(tmp_path / "tables" / "digits.md")["Method"].tolist()
    students = [f"{family}-w{width}" for family, width in (("dcgan", 4), ("dcgan", 8), ("dcgan", 16), ("mlp", 32), ("mlp", 128))]
    methods = ["untrained", "vanilla", "mse", "akdg"]
    assert rows == ["Teacher (sngan)", *(f"{student} {method}" for student in students for method in methods), "Real data (test split)"]


def test_a_sweep_gets_the_papers_numbers_at_the_size_nearest_the_papers_only() -> None:
    """The paper's DCGAN row is of one size (2.6M params); a sweep's 0.25x and 0.5x rows get no paper cells."""
    summary = pd.DataFrame(
        {
            "role": ["teacher", "student", "student", "student", "student"],
            "arch": ["sngan", "dcgan", "dcgan", "dcgan", "mlp"],
            "method": ["vanilla", "akdg", "akdg", "akdg", "akdg"],
            "params": [4.1e6, 0.66e6, 1.31e6, 2.61e6, 0.55e6],
        }
        | {name: [1.0] * 5 for name in ("layers", "mult_adds", "is_mean", "fid")}
    )
    matched = match_paper(summary, "cifar10")
    assert matched["paper_fid"].notna().tolist() == [True, False, False, True, True]
