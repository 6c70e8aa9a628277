"""Name-based registries, so datasets, architectures, methods and losses plug in without edits here.

A new piece is one module that calls ``REGISTRY.register("name")`` on import; configs refer to it by
name, and an unknown name fails with a message that lists what is available.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class AkdgError(Exception):
    """An error caused by the user's input (config, names, files): reported without a traceback."""


class Registry(Generic[T]):
    """A mapping from names to factories, with errors that name the registry and the choices."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@ARCHITECTURES.register("dcgan")``."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise AkdgError(f"{self.kind} {name!r} is registered twice; pick another name")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        """Look a name up; an unknown one names the available choices."""
        try:
            return self._entries[name]
        except KeyError:
            raise AkdgError(
                f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries))}"
                " (a new one registers itself on import: see README, 'Adding a method or an architecture')"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)


def import_plugins(modules: Iterable[str]) -> None:
    """Import user modules that register extra datasets, architectures or methods."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise AkdgError(
                f"plugin module {module!r} could not be imported ({error}); "
                "install it or fix the 'plugins' list in the config"
            ) from error
