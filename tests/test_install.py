"""A non-editable install (a wheel, as `pip install .` builds) carries its schemas, index and data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_a_wheel_install_validates_a_config_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "*.egg-info", "build", "__pycache__", ".dvc")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)], check=True)
    wheel = next((tmp_path / "wheel").glob("akdg-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "grid.yaml")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import akdg, sys; from akdg.cli import main; print(akdg.__file__, flush=True); sys.exit(main())",
            "validate-config",
            "grid.yaml",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(tmp_path / "site")), f"akdg was imported from {result.stdout}, not the wheel's install"
    assert "grid.yaml is valid" in result.stderr
