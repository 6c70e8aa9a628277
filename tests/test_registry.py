"""The registries: names and metadata from the index without torch, and an index that matches the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from akdg import registry
from akdg.registry import INDEX, AkdgError, Registry
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import dry_run  # noqa: E402  (its plan_once: a fresh interpreter plans a grid and says whether torch was imported)


def test_the_index_matches_what_the_builtin_modules_register() -> None:
    """A stale index would validate configs against old option schemas: regenerate with python -m akdg.registry."""
    assert registry.build_index() == json.loads(INDEX.read_text())


@pytest.mark.parametrize(
    "grid", ["config/config.yaml", "config/size_sweep.yaml", "config/paper/cifar10.yaml", "config/paper/lsun_bedroom.yaml"]
)
def test_a_dry_run_imports_no_torch(grid: str, tmp_path: Path) -> None:
    _, imported_torch = dry_run.plan_once(REPO, grid, tmp_path)  # fails the test, with the output, if snakemake -n fails
    assert not imported_torch, f"snakemake -n on {grid} imported torch"


def test_a_builtin_is_imported_only_when_built() -> None:
    code = (
        "import sys\n"
        "from akdg.registry import ARCHITECTURES, METHODS\n"
        "assert METHODS.metadata('akdg')['requires_teacher'] and ARCHITECTURES.metadata('sngan')['residual']\n"
        "assert 'torch' not in sys.modules and 'akdg.method_akdg' not in sys.modules\n"
        "METHODS.get('akdg')\n"
        "assert 'akdg.method_akdg' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_stale_index_entry_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    methods = Registry("method", describe=registry.METHODS.describe)
    declared = json.loads(INDEX.read_text())["method"]["mse"]
    monkeypatch.setattr(methods, "_declared", {"mse": {**declared, "requires_teacher": False}})
    monkeypatch.setattr(registry, "METHODS", methods)
    original = sys.modules.pop("baselines.mse", None)
    try:
        with pytest.raises(AkdgError, match=r"the registry index \(registry.json\) is stale for method 'mse'; run python -m akdg.registry"):
            methods.get("mse")
    finally:  # the module just imported registered with the stand-in registry: forget it
        sys.modules.pop("baselines.mse", None)
        if original is not None:
            sys.modules["baselines.mse"] = original


def test_a_plugin_may_not_take_a_builtin_name() -> None:
    with pytest.raises(AkdgError, match="architecture 'dcgan' is registered twice; pick another name"):
        registry.ARCHITECTURES.register("dcgan")(object())
