"""Reset per-process state in objects that a forked DataLoader worker inherits.

A fork copies memory but not threads: locks held by a parent thread stay locked forever in the
child, futures owned by a parent's pool never complete, and fsspec's async filesystems refuse to
run. Objects that hold such state register here and get `_reset_after_fork()` called in the child
right after the fork, while the child still has a single thread.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["track"]


class _ForkAware(Protocol):
    def _reset_after_fork(self) -> None: ...


_live: weakref.WeakSet[_ForkAware] = weakref.WeakSet()


def track(obj: _ForkAware) -> None:
    """Call `obj._reset_after_fork()` in every child forked while `obj` is alive."""
    _live.add(obj)


def _reset_all_in_child() -> None:
    for obj in list(_live):
        obj._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
