"""Progress of long loops as log lines a person can read: done/total, rate, throughput, elapsed and ETA.

Every ``akdg`` step writes to a log file (Snakemake redirects each job's output), not a terminal, so a
redrawn bar (carriage returns) is of no use there. :class:`LoggedProgress` is a tqdm (its clock,
smoothed rate and throttling) whose display is one ordinary log record: at the start, then at most
every ``AKDG_PROGRESS_SECONDS`` seconds (default 10), and at the end, e.g.

    train vanilla: 120/600 steps (20%), 9.87 steps/s, 316 images/s, elapsed 0:12, ETA 0:48
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

from tqdm import tqdm

from akdg.registry import AkdgError

INTERVAL_VARIABLE = "AKDG_PROGRESS_SECONDS"
DEFAULT_INTERVAL_SECONDS = 10.0


def interval_seconds() -> float:
    """Seconds between two progress lines: ``AKDG_PROGRESS_SECONDS``, else 10 (a line a few times a minute)."""
    text = os.environ.get(INTERVAL_VARIABLE)
    if text is None:
        return DEFAULT_INTERVAL_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise AkdgError(
            f"{INTERVAL_VARIABLE}={text!r} is not a number of seconds >= 0 (how often progress is logged); "
            f"set it to one, or unset it for {DEFAULT_INTERVAL_SECONDS:g} s"
        )
    return value


def readable(rate: float) -> str:
    """A rate with three significant digits and no exponent: 0.0123, 4.56, 78.9, 1234."""
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


class _Discard:
    """tqdm's output file: the lines go to the log (see LoggedProgress.display), tqdm's own writes nowhere."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class LoggedProgress(tqdm):
    """A tqdm that logs one line per display to ``logger`` instead of redrawing a bar.

    ``unit`` is plural ("steps", "images"); ``per_unit`` = (count, name) adds a throughput in a unit
    a person knows, e.g. (32, "images") for training steps of 32 images. ``interval``: seconds
    between lines (default :func:`interval_seconds`).
    """

    monitor_interval = 0  # miniters=1 checks the clock at every update: no monitor thread needed

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str,
        unit: str,
        logger: logging.Logger,
        per_unit: tuple[int, str] | None = None,
        interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.logger, self.per_unit = logger, per_unit
        mininterval = interval_seconds() if interval is None else interval
        super().__init__(iterable, desc=desc, unit=unit, file=_Discard(), mininterval=mininterval, miniters=1, leave=True, **kwargs)

    def line(self) -> str:
        """``desc: n/total unit (pct%), rate unit/s[, throughput], elapsed, ETA``; before any rate, ``..., starting``."""
        fmt = self.format_dict
        done, total, elapsed = fmt["n"], fmt["total"], fmt["elapsed"]
        rate = fmt["rate"] or ((done - fmt["initial"]) / elapsed if elapsed > 0 else None)
        parts = [f"{done}/{total} {self.unit} ({100 * done / total:.0f}%)" if total else f"{done} {self.unit}"]
        if not rate:
            return f"{self.desc}: {parts[0]}, " + ("done" if total and done >= total else "starting")
        parts.append(f"{readable(rate)} {self.unit}/s")
        if self.per_unit:
            parts.append(f"{readable(rate * self.per_unit[0])} {self.per_unit[1]}/s")
        parts.append(f"elapsed {self.format_interval(elapsed)}")
        if total and done < total:
            parts.append(f"ETA {self.format_interval((total - done) / rate)}")
        return f"{self.desc}: " + ", ".join(parts)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        erasing = msg is not None  # tqdm passes msg='' only to erase a bar: nothing to log
        ending_before_close = bool(self.total) and self.n >= self.total and not self.disable  # close() logs the last line, once
        if not erasing and not ending_before_close:
            self.logger.info("%s", self.line())
        return True


class CountedProgress:
    """Progress of a loop akdg does not own (torch-fidelity's), counted item by item from inside it.

    The line's clock starts at the first items counted, not when this is made (a reference split is
    read only after the generated images), and it closes at ``total``.
    """

    def __init__(self, total: int, *, desc: str, unit: str, logger: logging.Logger) -> None:
        self.total, self.desc, self.unit, self.logger = total, desc, unit, logger
        self.bar: LoggedProgress | None = None

    def count(self, items: int) -> None:
        if self.bar is None:  # the first items took unmeasured time: done, but left out of the rate
            self.bar = LoggedProgress(total=self.total, initial=items, desc=self.desc, unit=self.unit, logger=self.logger)
        else:
            self.bar.update(items)
        if self.bar.n >= self.total:
            self.bar.close()
