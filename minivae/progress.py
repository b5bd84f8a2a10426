"""One progress bar, for downloads (data.py) and training epochs (train.py).

    bar = Progress(total, label, unit=str)      total: how much there is to do, in units of `unit`
    bar.update(n, note)                         n more done; `note` follows the bar (a loss, say)
    bar.close()

On a terminal the bar is redrawn in place, at most ten times a second: `label [#####.....]  40%
done note`. Off a terminal (a log file, CI) it writes a plain line at each quarter instead, and
one when it closes - unless it is `transient`, as an epoch's bar is: then it says nothing off a
terminal and is erased on one when it closes, for the epoch's log line says what it said.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Callable

WIDTH = 30  # characters of the bar


class Progress:
    def __init__(self, total: int | None, label: str, stream: IO[str] | None = None,
                 unit: Callable[[int], str] = str, transient: bool = False, quiet: bool = False):
        """quiet: counts, shows nothing (for callers whose progress display is optional)."""
        self.stream = sys.stderr if stream is None else stream
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.quiet = quiet
        self.total, self.label, self.unit, self.transient = total, label, unit, transient
        self.done, self.last_draw, self.next_quarter = 0, 0.0, 25

    def update(self, n: int, note: str = "") -> None:
        self.done += n
        if self.quiet:
            return
        if self.tty:
            if time.monotonic() - self.last_draw > 0.1:  # redraw at most 10 times a second
                self.last_draw = time.monotonic()
                self._draw(note)
        elif self.total and not self.transient:
            while self.next_quarter <= 100 and 100 * self.done >= self.next_quarter * self.total:
                self._line(f"  {self.label}: {self.next_quarter}% of {self.unit(self.total)}")
                self.next_quarter += 25

    def close(self, note: str = "") -> None:
        if self.quiet:
            return
        if self.tty:
            self._draw(note)
            self.stream.write("\r" + " " * 100 + "\r" if self.transient else "\n")
        elif not self.transient:
            self._line(f"  {self.label}: done, {self.unit(self.done)}")
        self.stream.flush()

    def _draw(self, note: str) -> None:
        if self.total:
            filled = WIDTH * self.done // self.total
            bar = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {100 * self.done // self.total:3d}%"
        else:
            bar = "[size unknown]"
        self.stream.write(f"\r{self.label} {bar} {self.unit(self.done)}{note}")
        self.stream.flush()

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
