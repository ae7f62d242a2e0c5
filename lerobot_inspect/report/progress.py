"""Progress inside a notebook, seen both live and by the report.

Live (`marimo run`/`edit`), a notebook shows `mo.status.progress_bar`, removed once the work is done
(a finished bar left on screen reads as work still pending). Headless under `lerobot-inspect report`,
nobody sees that bar, so the same loop also writes a line to stderr about every 10% when
`LEROBOT_INSPECT_PROGRESS` is set; the report's runner sets it and forwards those lines, so a long
notebook says where it is instead of going quiet for minutes.

    with progress_bar(total=len(episodes), title="Decoding frames") as bar:
        for episode in episodes:
            ...
            bar.update()
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["PROGRESS_ENV", "PROGRESS_PREFIX", "progress_bar"]

PROGRESS_ENV = "LEROBOT_INSPECT_PROGRESS"
PROGRESS_PREFIX = "[progress] "


class _Echo:
    """Counts updates and prints `title: done/total (elapsed)` at each further tenth."""

    def __init__(self, bar: Any, total: int, title: str) -> None:
        self._bar, self._total, self._title = bar, max(int(total), 1), title
        self._done, self._next, self._start = 0, 0.1, time.perf_counter()
        self._echo = bool(os.environ.get(PROGRESS_ENV))

    def update(self, increment: int = 1, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.update(increment=increment, **kwargs)
        self._done += increment
        if self._echo and (self._done / self._total >= self._next or self._done == self._total):
            print(f"{PROGRESS_PREFIX}{self._title}: {self._done}/{self._total} "
                  f"({time.perf_counter() - self._start:.0f} s)", file=sys.stderr, flush=True)
            self._next = self._done / self._total + 0.1


@contextlib.contextmanager
def progress_bar(*, total: int, title: str) -> Iterator[_Echo]:
    """A marimo progress bar that disappears when done, echoed to stderr for the report."""
    import marimo as mo

    with mo.status.progress_bar(total=max(int(total), 1), title=title, remove_on_exit=True) as bar:
        yield _Echo(bar, total, title)
