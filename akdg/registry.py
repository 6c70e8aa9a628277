"""Name-based registries, so datasets, architectures, methods and losses plug in without edits here.

A new piece is one module that calls ``REGISTRY.register("name")`` on import; configs refer to it by
name, and an unknown name fails with a message that lists what is available.

The built-in pieces are known from an index (``akdg/data/registry.json``, written by
``python -m akdg.registry``): each name, the module that implements it and what config validation
needs to know of it. A built-in module is imported only when its piece is built, so validating a
config or planning the workflow (``snakemake -n``) never imports torch, and no module imports its
own plug-ins back. Plug-ins still register by being imported.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

T = TypeVar("T")

INDEX = Path(__file__).parent / "data" / "registry.json"
# Every module that registers a built-in piece; the index is built by importing them.
BUILTIN_MODULES = (
    "akdg.datasets",
    "akdg.dataset_cifar10",
    "akdg.dataset_files",
    "akdg.dataset_lsun",
    "akdg.arch_dcgan",
    "akdg.arch_mlp",
    "akdg.arch_pggan",
    "akdg.arch_sngan",
    "akdg.losses",
    "akdg.method_akdg",
    "baselines.joint",
    "baselines.lit",
    "baselines.mse",
    "baselines.vanilla",
)
REGENERATE = "python -m akdg.registry"


class AkdgError(Exception):
    """An error caused by the user's input (config, names, files): reported without a traceback."""


def _read_index() -> dict[str, dict[str, dict[str, Any]]]:
    return json.loads(INDEX.read_text()) if INDEX.exists() else {}


class Registry(Generic[T]):
    """A mapping from names to factories, with errors that name the registry and the choices.

    ``describe`` turns an entry into the JSON metadata that validation reads (``metadata``); for a
    built-in that is not imported yet, the index answers instead.
    """

    def __init__(self, kind: str, describe: Callable[[T], dict[str, Any]] = lambda entry: {}) -> None:
        self.kind = kind
        self.describe = describe
        self._entries: dict[str, T] = {}
        self._modules: dict[str, str] = {}
        self._declared: dict[str, dict[str, Any]] = _read_index().get(kind, {})  # name -> {"module": ..., **metadata}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@ARCHITECTURES.register("dcgan")``."""

        module = sys._getframe(1).f_globals.get("__name__", "")  # the registering module, where the index says to import it

        def add(entry: T) -> T:
            declared = self._declared.get(name)
            if name in self._entries or (declared is not None and declared["module"] != module):
                raise AkdgError(f"{self.kind} {name!r} is registered twice; pick another name")
            self._entries[name] = entry
            self._modules[name] = module
            return entry

        return add

    def get(self, name: str) -> T:
        """Look a name up, importing a built-in's module on first use; an unknown name names the available choices."""
        if name not in self._entries and name in self._declared:
            module = self._declared[name]["module"]
            importlib.import_module(module)
            if name not in self._entries:
                raise AkdgError(
                    f"the registry index says module {module} registers {self.kind} {name!r}, but it does not; run {REGENERATE}"
                )
            if self._record(name) != self._declared[name]:
                raise AkdgError(f"the registry index ({INDEX.name}) is stale for {self.kind} {name!r}; run {REGENERATE}")
        try:
            return self._entries[name]
        except KeyError:
            raise AkdgError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
                " (a new one registers itself on import: see docs/extending.md)"
            ) from None

    def metadata(self, name: str) -> dict[str, Any]:
        """What validation needs of an entry (e.g. a method's options), without importing a built-in's module."""
        if name in self._entries:
            return self.describe(self._entries[name])
        if name in self._declared:
            return {key: value for key, value in self._declared[name].items() if key != "module"}
        self.get(name)  # raises, naming the choices
        raise AssertionError

    def module(self, name: str) -> str:
        """The module that implements ``name``: a built-in's from the index, a plug-in's as it registered."""
        if name in self._declared:
            return self._declared[name]["module"]
        self.get(name)
        return self._modules[name]

    def names(self) -> list[str]:
        return sorted({*self._entries, *self._declared})

    def imported(self) -> list[str]:
        """The names whose implementation is imported: plug-ins, and built-ins already built in this process."""
        return sorted(self._entries)

    def implemented(self) -> dict[str, dict[str, Any]]:
        """Every entry registered so far, as the index stores it."""
        return {name: self._record(name) for name in sorted(self._entries)}

    def _record(self, name: str) -> dict[str, Any]:
        """A registered entry as the index stores it: its module and its metadata."""
        return {"module": self._modules[name], **self.describe(self._entries[name])}


def _describe_method(method: Any) -> dict[str, Any]:
    return {
        "requires_teacher": method.requires_teacher,
        "residual_generators": method.residual_generators,
        "ablation_of": method.ablation_of,
        "options_schema": method.options_schema(),
    }


def _describe_architecture(family: Any) -> dict[str, Any]:
    return {
        "residual": family.residual,
        "options_schema": family.options_schema,
        "layout": list(family.layout),
        "per_stage": list(family.per_stage),
    }


DATASETS: Registry[Any] = Registry("dataset")  # options -> ImageSplits
DOWNLOADERS: Registry[Any] = Registry("dataset downloader")  # options -> None (writes the official files)
SOURCES: Registry[Any] = Registry("dataset sources")  # options -> Sources (the files a loader reads)
LABELLED: Registry[Any] = Registry("dataset labels")  # options -> bool, for datasets whose labels depend on their files, or that have none
ARCHITECTURES: Registry[Any] = Registry("architecture", describe=_describe_architecture)
LOSSES: Registry[Any] = Registry("GAN loss", describe=lambda loss: {"parameters_schema": loss.parameters_schema()})
METHODS: Registry[Any] = Registry("method", describe=_describe_method)
REGISTRIES = (DATASETS, DOWNLOADERS, SOURCES, LABELLED, ARCHITECTURES, LOSSES, METHODS)


def build_index() -> dict[str, dict[str, dict[str, Any]]]:
    """The index as the built-in modules register themselves (this imports torch); plug-ins imported so far are left out."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return {
        registry.kind: {name: entry for name, entry in registry.implemented().items() if entry["module"] in BUILTIN_MODULES}
        for registry in REGISTRIES
    }


def import_plugins(modules: Iterable[str]) -> None:
    """Import user modules that register extra datasets, architectures or methods."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise AkdgError(
                f"plugin module {module!r} could not be imported ({error}); install it or fix the 'plugins' list in the config"
            ) from error


def write_index() -> None:
    INDEX.write_text(json.dumps(build_index(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    # Run as a script this module is __main__, not the akdg.registry that the implementations register with.
    importlib.import_module("akdg.registry").write_index()
