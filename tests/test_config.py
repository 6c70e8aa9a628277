"""Config validation beyond the schema: the capacity gap between the students and their teacher."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from akdg.cli import main
from akdg.config import capacity_warnings, check_buildable, planned_size, validate_config
from akdg.registry import AkdgError
from conftest import REPO

CONFIGS = ["config.yaml", "test.yaml", "cpu_repro.yaml", "paper/cifar10.yaml", "paper/lsun_bedroom.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_every_committed_grid_has_students_smaller_than_their_teacher(name: str) -> None:
    config = validate_config(load(name))
    teacher = planned_size(config["teacher"]["generator"], config)
    for student in config["students"]:
        size = planned_size(student, config)
        assert size["params"] < teacher["params"] and size["mult_adds"] < teacher["mult_adds"], (name, student, size, teacher)
    assert capacity_warnings(config) == []


def test_the_default_students_keep_the_papers_proportions() -> None:
    """About half the teacher's parameters (the paper's are 0.5-0.65x) and at most a tenth of its mult-adds."""
    config = validate_config(load("config.yaml"))
    teacher = planned_size(config["teacher"]["generator"], config)
    for student in config["students"]:
        size = planned_size(student, config)
        assert 0.4 <= size["params"] / teacher["params"] <= 0.65 and size["mult_adds"] <= teacher["mult_adds"] / 10, (student, size)


def test_a_student_as_large_as_its_teacher_is_warned_about_by_validate_config(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """`akdg validate-config` and a run's start warn; planning (snakemake -n) does not build models, so it cannot."""
    config = load("config.yaml")
    config["students"] = [*config["students"], {"arch": "mlp", "width": 256}]
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(config))
    with caplog.at_level(logging.WARNING, logger="akdg.cli"):
        assert main(["validate-config", str(tmp_path / "grid.yaml")]) == 0
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING] == [
        "student mlp-w256 is not smaller than the teacher sngan-w32 (207,360 vs 54,497 parameters, 204,800 vs 5,988,352 "
        "mult-adds at 16 px): the grid lacks the paper's capacity gap; narrow the student or widen the teacher"
    ]


def test_a_step_spec_gets_the_config_schemas_defaults() -> None:
    """Specs refer to the config schema's keys; their defaults come from there, not from a copy in the steps."""
    from akdg.config import check_spec
    from conftest import tiny_train_spec

    spec = {
        key: value for key, value in tiny_train_spec().items() if key not in ("device", "amp", "channels_last", "compile", "max_abs_loss")
    }
    check_spec("train", spec)
    training = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())["properties"]["training"]["properties"]
    assert {key: spec[key] for key in ("device", "amp", "channels_last", "compile", "max_abs_loss")} == {
        key: training[key]["default"] for key in ("device", "amp", "channels_last", "compile", "max_abs_loss")
    }


def sweep_config(*students: dict) -> dict:
    config = load("config.yaml")
    config["students"] = list(students)
    return config


def test_a_sweep_entry_becomes_one_plain_student_per_width_in_order() -> None:
    """Every consumer of a validated config (the Snakefile, the benchmarks, the docs) sees only {arch, width} students."""
    config = validate_config(
        sweep_config({"arch": "dcgan", "widths": [8, "2", 4]}, {"arch": "mlp", "width": 32}, {"arch": "mlp", "widths": [16]})
    )
    assert config["students"] == [
        {"arch": "dcgan", "width": 8},
        {"arch": "dcgan", "width": 2},
        {"arch": "dcgan", "width": 4},
        {"arch": "mlp", "width": 32},
        {"arch": "mlp", "width": 16},
    ]
    assert validate_config(config)["students"] == config["students"]  # validating an expanded config again changes nothing


@pytest.mark.parametrize(
    ("students", "fragment"),
    [
        ([{"arch": "dcgan", "widths": [4], "width": 4}], "students[0] (dcgan) gives both width and widths"),
        ([{"arch": "dcgan", "widths": [4], "stage_channels": [16, 8, 4]}], "students[0] (dcgan) gives widths and stage_channels; stage_c"),
        ([{"arch": "dcgan", "width": 2}, {"arch": "mlp", "widths": []}], "students[1] (mlp).widths must be a non-empty list"),
        ([{"arch": "dcgan", "widths": 4}], "students[0] (dcgan).widths must be a non-empty list"),
        ([{"arch": "dcgan", "widths": [4, -2]}], "students[0] (dcgan).widths holds -2; a width is a positive whole number"),
        ([{"arch": "dcgan", "widths": [4, True]}], "students[0] (dcgan).widths holds True"),
        ([{"arch": "dcgan", "widths": [4, 4]}], "student dcgan-w4 appears twice (in students[0].widths)"),
        (
            [{"arch": "mlp", "widths": [16, 32]}, {"arch": "mlp", "width": 32}],
            "student mlp-w32 appears twice (in students[0] and students[1])",
        ),
        ([{"arch": "dcgan", "widths": [4], "depth": 3}], "dcgan has no option depth; it accepts width, stage_channels"),
    ],
)
def test_a_bad_sweep_is_refused_with_a_sentence_naming_its_entry(students: list[dict], fragment: str) -> None:
    with pytest.raises(AkdgError) as error:
        validate_config(sweep_config(*students))
    assert fragment in str(error.value)


def test_a_width_its_family_cannot_build_is_refused_before_any_job() -> None:
    """pggan's channels at 32 px are width // 2: width 1 leaves none (built on the meta device: no memory, no compute).

    validate_config (a dry run's) does not build; akdg validate-config and a run's start do (tests/test_bad_input_config.py).
    """
    config = validate_config(sweep_config({"arch": "pggan", "widths": [16, 1]}) | {"dataset": {"name": "digits", "resolution": 32}})
    with pytest.raises(AkdgError, match=r"student pggan-w1 cannot be built at 32 px \(pggan width 1 leaves no channels"):
        check_buildable(config)
    check_buildable(validate_config(sweep_config({"arch": "pggan", "widths": [16, 2]}) | {"dataset": {"name": "digits", "resolution": 32}}))


def test_the_cpu_size_sweep_shares_the_cpu_reproductions_data_networks_and_metric_with_sizes_all_below_the_teacher() -> None:
    """The sweep keeps config/cpu_repro.yaml's digits, teacher and discriminators, loss, extractor and metric settings
    (the reproduction has since added a validation split, tuning, teachers, EMA and curves, which the sweep has not)."""
    sweep, repro = validate_config(load("size_sweep.yaml")), validate_config(load("cpu_repro.yaml"))
    for key in ("z_dim", "loss", "student_discriminator", "extractor", "speed"):
        assert sweep[key] == repro[key], key
    assert {key: value for key, value in repro["dataset"].items() if not key.startswith("validation")} == sweep["dataset"]
    assert sweep["teacher"]["generator"] == repro["teacher"]["generator"]
    assert sweep["teacher"]["discriminator"] == repro["teacher"]["discriminator"]
    curve_keys = {"curve_fractions", "curve_samples"}
    assert {key: value for key, value in sweep["evaluation"].items() if key not in curve_keys} == {
        key: value for key, value in repro["evaluation"].items() if key not in curve_keys
    }
    families = [student["arch"] for student in sweep["students"]]
    assert families.count("dcgan") >= 4 and families.count("mlp") >= 3 and len(sweep["seeds"]) >= 3
    assert list(sweep["methods"]) == ["vanilla", "mse", "akdg"]
    teacher = planned_size(sweep["teacher"]["generator"], sweep)["params"]
    assert all(planned_size(student, sweep)["params"] < teacher for student in sweep["students"])


def test_the_paper_size_sweep_has_students_at_a_quarter_half_and_all_of_the_papers_parameters() -> None:
    """Paper (Table I): DCGAN 2.6M, MLP 2.2M parameters; the sweep's sizes within 0.03 of 0.25x, 0.5x and 1x."""
    config = validate_config(load("paper/cifar10_sizes.yaml"))
    paper = {"dcgan": 2.6e6, "mlp": 2.2e6}
    for family, params in paper.items():
        ratios = sorted(planned_size(student, config)["params"] / params for student in config["students"] if student["arch"] == family)
        assert ratios == pytest.approx([0.25, 0.5, 1.0], abs=0.03), (family, ratios)
