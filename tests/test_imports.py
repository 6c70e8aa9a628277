"""The package's import graph has no cycle: built-ins are registered through the index, not by back-imports."""

from __future__ import annotations

import pkgutil
from graphlib import CycleError, TopologicalSorter

import akdg
import baselines
from akdg.fingerprint import project_imports


def package_modules() -> list[str]:
    return [f"{package.__name__}.{info.name}" for package in (akdg, baselines) for info in pkgutil.iter_modules(package.__path__)]


def test_no_module_imports_itself_back_through_others() -> None:
    """Imports inside functions count too: a lazy import that closes a cycle still ties the modules together."""
    modules = set(package_modules())
    graph = {module: [imported for imported in project_imports(module) if imported in modules] for module in modules}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_the_check_sees_a_cycle() -> None:
    try:
        TopologicalSorter({"a": ["b"], "b": ["a"]}).prepare()
    except CycleError:
        return
    raise AssertionError("graphlib missed a two-module cycle")
