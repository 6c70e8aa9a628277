"""Training state written every N steps (write, then rename), so that a killed job resumes, not restarts.

The state is everything the next step depends on: the generator, every module and optimiser the
method holds, the EMA, the loss history, the step count and the data/noise RNG. Resuming from it
gives, on CPU, the very weights an uninterrupted run would have. A state written for another spec
(a changed config) is never resumed: its identity is a hash of the spec it was trained under.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from akdg.io import atomic_write
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

FORMAT = "akdg-train-state-v1"


@dataclass(frozen=True)
class Resumable:
    """Where a run keeps its state, what it must have been trained under, and how often to write it."""

    path: Path
    identity: str
    every: int

    def due(self, step: int, steps: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step < steps

    def save(self, step: int, state: dict[str, Any]) -> None:
        with atomic_write(self.path) as tmp:
            torch.save({"format": FORMAT, "identity": self.identity, "step": step, **state}, tmp)
        log.info("step %d: training state -> %s", step, self.path)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None where there is none or it belongs to another spec."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise AkdgError(f"training state {self.path} is truncated or not a torch file ({reason}); delete it to train from step 1") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise AkdgError(f"training state {self.path} is not an akdg training state; delete it to train from step 1")
        if state["identity"] != self.identity:
            log.warning("training state %s was written for another spec; training from step 1", self.path)
            return None
        return state

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
