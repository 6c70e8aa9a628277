"""Fingerprints of the code a workflow job runs, so that Snakemake reruns exactly the jobs whose code changed.

Snakemake sees a job's inputs, params and shell command, not the Python behind its ``akdg`` command.
Each rule therefore passes ``code=fingerprint(...)`` as a param: a digest over the modules that job
runs (its step's modules and everything they import from the project, plus the modules that
implement the architectures, method, loss and dataset it uses, plug-ins included). Snakemake's
params trigger then reruns a job whose digest changed, and everything downstream of it; nothing
else. A module is read as its syntax tree without docstrings, so comments, docstrings and layout
never rerun anything. Nothing here imports torch or the modules it reads.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Iterable

from akdg.registry import ARCHITECTURES, DATASETS, DOWNLOADERS, LABELLED, LOSSES, METHODS, SOURCES, AkdgError

# The modules each kind of job runs, beside the pieces it builds by name. The steps module (the glue between the
# `akdg` command and the library) counts as itself only: it imports every step's code, and each job runs one step.
STEP = "akdg.steps"
PROTOCOL = ("akdg.protocol", "akdg.io")  # every step writes its protocol and outputs through these
STEP_MODULES: dict[str, tuple[str, ...]] = {
    "prepare_data": ("akdg.datasets",),
    "train_extractor": ("akdg.feature_extractor_classifier",),
    "fetch_extractor": ("akdg.feature_extractors", "akdg.extractor_pins"),
    "reference_stats": ("akdg.metrics",),
    "train": ("akdg.training", "akdg.checkpoint", "akdg.resume", "akdg.datasets", "akdg.tuning"),
    "import_teacher": ("akdg.checkpoint", "akdg.datasets"),
    "measure_cost": ("akdg.cost", "akdg.datasets"),
    "evaluate": ("akdg.metrics", "akdg.checkpoint", "akdg.cost"),
    "aggregate": ("akdg.tables", "akdg.plots", "akdg.sizes", "akdg.ablations"),
    "plot_samples": ("akdg.plots", "akdg.checkpoint"),
    "select_tuning": ("akdg.tuning",),
}


def fingerprint(
    step: str,
    *,
    architectures: Iterable[str] = (),
    methods: Iterable[str] = (),
    losses: Iterable[str] = (),
    dataset: str | None = None,
) -> str:
    """A short digest of the code a job of ``step`` runs, building the named pieces."""
    roots = {STEP, *PROTOCOL, *STEP_MODULES[step]}
    roots.update(ARCHITECTURES.module(name) for name in architectures)
    roots.update(METHODS.module(name) for name in methods)
    roots.update(LOSSES.module(name) for name in losses)
    if dataset is not None:
        roots.update(registry.module(dataset) for registry in (DATASETS, DOWNLOADERS, SOURCES, LABELLED) if dataset in registry.names())
    closure = set().union(*(imported_closure(root) for root in roots if root != STEP), {STEP})
    digest = hashlib.sha256()
    for module in sorted(closure):
        digest.update(f"{module}\0{module_digest(module)}\0".encode())
    return digest.hexdigest()[:16]


@functools.cache
def imported_closure(module: str) -> frozenset[str]:
    """``module`` and every module of its own top-level package (or akdg's) that it imports, directly or not."""
    packages = {module.split(".")[0], "akdg"}
    seen, pending = set(), [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(imported for imported in project_imports(name) if imported.split(".")[0] in packages)
    return frozenset(seen)


@functools.cache
def project_imports(module: str) -> tuple[str, ...]:
    """The modules ``module`` imports anywhere in its body (functions included), that exist as files."""
    tree = ast.parse(source_file(module).read_text(), filename=str(source_file(module)))
    package = module if source_file(module).name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)  # `from akdg import steps` imports a module
    return tuple(sorted(name for name in set(names) if name and find_file(name) is not None))


@functools.cache
def module_digest(module: str) -> str:
    """SHA-256 of the module's syntax tree without docstrings: only a change in what the code does counts."""
    tree = ast.parse(source_file(module).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def source_file(module: str) -> Path:
    path = find_file(module)
    if path is None:
        raise AkdgError(
            f"module {module} has no Python source file to fingerprint; install it from source (pip install -e) or remove it from the config"
        )
    return path


@functools.cache
def find_file(module: str) -> Path | None:
    """The source file of ``module``, found on sys.path without importing it or its packages."""
    search = None
    spec = None
    for depth, part in enumerate(module.split(".")):
        spec = PathFinder.find_spec(part if depth == 0 else ".".join(module.split(".")[: depth + 1]), search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)
