"""A one-line progress bar of training steps, for the command line and the leaderboard runner."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class StepBar:
    """``[#####.....] done/total steps  rate steps/s  label``: redrawn in place on a terminal.

    ``unit`` names what is counted (default ``steps``; ``nlp-envs collect`` counts ``episodes``).

    Elsewhere (a pipe, a log file) nothing is drawn until :meth:`finish`, which writes the final
    state once, so logs do not fill with carriage returns.

    As a context manager it calls :meth:`finish` when the block ends normally, and on an error or
    Ctrl-C only ends the line it was drawing, so that the error message starts on a line of its own
    and an unfinished run never shows a final state.
    """

    WIDTH = 30

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, unit: str = "steps") -> None:
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = sys.stderr if stream is None else stream
        self.live = self.stream.isatty()
        self.started = time.perf_counter()
        self.drawn_at = 0.0
        self.done = 0

    def __enter__(self) -> StepBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.finish()
        elif self.drawn_at:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, done: int) -> None:
        """Record ``done`` steps; redraw at most five times a second (on a terminal)."""
        self.done = min(int(done), self.total)
        now = time.perf_counter()
        if self.live and now - self.drawn_at >= 0.2:
            self.drawn_at = now
            self._draw("\r")

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw("\r" if self.live else "")
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, prefix: str) -> None:
        filled = self.WIDTH * self.done // self.total
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(
            f"{prefix}[{bar}] {self.done:,}/{self.total:,} {self.unit}  {rate:,.0f} {self.unit}/s  {self.label}"
        )
        self.stream.flush()
