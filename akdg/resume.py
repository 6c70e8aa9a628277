"""Training state written every N steps (write, then rename), so that a killed job resumes, not restarts.

The state is everything the next step depends on: the generator, every module and optimiser the
method holds, the EMA, the loss history, the step count, the data/noise RNG and torch's global
generators (the CPU's, and the GPU's when training on CUDA). Resuming from it gives, on CPU, the very
weights an uninterrupted run would have. A state written for another spec (a changed config) or on
another kind of device is never resumed: its identity is a hash of the spec and the device type.
It is always read onto the CPU; loading it into the context's models and optimisers puts each
tensor back on the training device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akdg.io import load_torch, save_torch
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

FORMAT = "akdg-train-state-v2"  # v2: torch's global CPU/CUDA RNG states beside the data/noise RNG


@dataclass(frozen=True)
class Resumable:
    """Where a run keeps its state, what it must have been trained under, and how often to write it."""

    path: Path
    identity: str
    every: int

    def due(self, step: int, steps: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step < steps

    def save(self, step: int, state: dict[str, Any]) -> None:
        save_torch({"format": FORMAT, "identity": self.identity, "step": step, **state}, self.path)
        log.info("step %d: training state -> %s", step, self.path)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None where there is none or it belongs to another spec or device type."""
        if not self.path.is_file():
            return None
        state = load_torch(self.path, "training state", "", "delete it to train from step 1")
        found = state.get("format") if isinstance(state, dict) else None
        if found != FORMAT:
            raise AkdgError(
                f"training state {self.path} has format {found!r}, not {FORMAT!r} (another akdg version, or not a training state); "
                "delete it to train from step 1"
            )
        if state.get("identity") != self.identity:
            log.warning("training state %s was written for another spec or device type; training from step 1", self.path)
            return None
        return state

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
