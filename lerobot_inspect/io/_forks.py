"""Per-process state for objects that DataLoader workers inherit: the one fork-safety mechanism.

A fork copies memory but not threads: locks held by a parent thread stay locked forever in the
child, futures owned by a parent's pool never complete, open FFmpeg decoders and counters describe
the parent. A spawned worker gets a pickled copy instead, where none of that can travel.

`ProcessLocal` covers both: a subclass builds its per-process state in `_init_process_state()`
and names those attributes in `_PROCESS_FIELDS`. The state is built at construction (call
`self._start_process_state()` from `__init__`), rebuilt in every forked child right after the fork
(while the child still has one thread, through `os.register_at_fork`) and rebuilt on unpickling;
the listed fields are left out of the pickle.

`freeze_inherited()` is the other half of living in a fork: the child's garbage collector would
otherwise walk every object inherited from the parent on each full collection, touching (and so
copying) their pages and spending a DataLoader worker's CPU on objects it never frees.
"""

from __future__ import annotations

import gc
import os
import weakref
from typing import Any, ClassVar

__all__ = ["ProcessLocal", "freeze_inherited"]

_live: weakref.WeakSet[ProcessLocal] = weakref.WeakSet()
_inherited_unfrozen = False  # set in a forked child until its first freeze_inherited()


class ProcessLocal:
    """Mixin: per-process state rebuilt after a fork and on unpickling (see the module docstring)."""

    _PROCESS_FIELDS: ClassVar[tuple[str, ...]] = ()

    def _init_process_state(self) -> None:
        raise NotImplementedError

    def _start_process_state(self) -> None:
        self._init_process_state()
        _live.add(self)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._PROCESS_FIELDS:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_process_state()


def freeze_inherited() -> None:
    """Once in a forked child: move every object alive now to the GC's permanent generation.

    Called where a child starts its real work (a DataLoader worker's first sample or iteration).
    Objects from the parent and the child's set-up live as long as the worker does; frozen, full
    collections skip them. Measured with 2 workers at 320x240: first batch 0.45-0.50 vs 0.63-0.68 s,
    fewer page faults, ~3% more samples/s. A no-op outside a fresh fork, so it costs one check."""
    global _inherited_unfrozen
    if _inherited_unfrozen:
        _inherited_unfrozen = False
        gc.freeze()


def _after_fork_in_child() -> None:
    global _inherited_unfrozen
    _inherited_unfrozen = True
    for obj in list(_live):
        obj._init_process_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
