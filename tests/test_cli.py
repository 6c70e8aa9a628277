"""The akdg command's help, and ``akdg run``: Snakemake's flags pass through, and it runs in the repository root."""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akdg import cli
from akdg.config import check_spec

REPO = Path(__file__).resolve().parent.parent


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (action,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {"akdg": parser, **action.choices}


def test_every_argument_of_every_command_says_what_it_is():
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in subcommands().items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []


def examples(parser: argparse.ArgumentParser) -> list[str]:
    """The commands of a parser's epilog, each joined from its continued lines."""
    text = (parser.epilog or "").replace(" \\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("akdg ")]


@pytest.mark.parametrize("name", [name for name in subcommands() if name != "akdg"])
def test_every_command_shows_an_example_that_it_accepts(name: str):
    parser = subcommands()[name]
    assert "example" in parser.format_help()
    commands = examples(parser)
    assert commands and all(command.startswith(f"akdg {name}") for command in commands)
    for command in commands:
        words = shlex.split(re.sub(r"\$\([^)]*\)", "RUNS.json", command))[1:]  # aggregate's $(find ...) stands for run files
        args, unknown = cli.build_parser().parse_known_args(words)
        assert unknown == [] or name == "run", unknown
        if getattr(args, "spec", None) is not None:
            check_spec(name, args.spec)  # the example's spec is one the step takes


def test_the_top_level_help_is_plain_text():
    text = cli.build_parser().format_help()
    assert "``" not in text and ":func:" not in text and "`akdg" not in text
    assert "akdg run -n" in text


@pytest.fixture
def snakemake_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """``subprocess.run`` as akdg run calls it, recorded instead of run."""
    calls = []

    def record(command: list[str], **options) -> subprocess.CompletedProcess:
        calls.append({"command": command, **options})
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", record)
    return calls


def test_run_passes_snakemake_flags_and_targets_through(
    snakemake_calls: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("outdir: results/mine\n")
    with caplog.at_level(logging.INFO, logger="akdg"):
        assert (
            cli.main(
                ["run", "-n", "--cores", "2", "all_tables", "--set-threads", "train=1", "--config", "z_dim=8", "--configfile", "mine.yaml"]
            )
            == 0
        )
    (call,) = snakemake_calls
    assert call["cwd"] == REPO
    assert call["command"][1:] == [
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--cores",
        "2",
        "-n",
        "all_tables",
        "--set-threads",
        "train=1",
        "--config",
        "z_dim=8",
        "--configfile",
        str(tmp_path / "mine.yaml"),
    ]
    assert f"running snakemake in {REPO}: " in caplog.text


@pytest.mark.parametrize(
    "argv, passed",
    [
        (["run", "-n"], ["-n"]),
        (["run", "--", "-n"], ["-n"]),  # the form before flags went straight through
        (["run", "--cores", "1", "--", "-n", "all_tables"], ["-n", "all_tables"]),
        (["run", "-c", "1", "-n"], ["-c", "1", "-n"]),  # snakemake's short form: after --cores, so it wins there
    ],
)
def test_run_takes_flags_with_or_without_a_double_dash(snakemake_calls: list[dict], argv: list[str], passed: list[str]):
    assert cli.main(argv) == 0
    command = snakemake_calls[0]["command"]
    assert command[command.index("--cores") + 2 :] == passed


def test_run_names_a_config_file_that_is_not_there(snakemake_calls: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--configfile", "config/test.yaml", "all_tables"]) == 2
    assert snakemake_calls == []
    assert f"--configfile config/test.yaml: {tmp_path / 'config/test.yaml'} is not a file" in caplog.text


def test_other_commands_still_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["validate-config", "config/config.yaml", "-n"])
    assert exit.value.code == 2
    assert "unrecognized arguments: -n" in capsys.readouterr().err


def test_run_plans_in_the_repository_root_from_any_folder(tmp_path: Path):
    """A real dry run from elsewhere: the config given relative to that folder is read, nothing is written there."""
    outdir = f"results/cli-dry-run-{tmp_path.name}"
    config = yaml.safe_load((REPO / "config/test.yaml").read_text()) | {"outdir": outdir}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "akdg", "run", "-n", "--cores", "1", "--configfile", "grid.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"running snakemake in {REPO}: " in output
    assert f"Working directory: {REPO}" in output
    assert f"{outdir}/data/digits.npz" in output and "prepare_data" in output  # planned from grid.yaml, into the root's outdir
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grid.yaml"]
    assert not (REPO / outdir).exists()
