"""Per-process state for objects that DataLoader workers inherit: the one fork-safety mechanism.

A fork copies memory but not threads: locks held by a parent thread stay locked forever in the
child, futures owned by a parent's pool never complete, open FFmpeg decoders and counters describe
the parent. A spawned worker gets a pickled copy instead, where none of that can travel.

`ProcessLocal` covers both: a subclass builds its per-process state in `_init_process_state()`
and names those attributes in `_PROCESS_FIELDS`. The state is built at construction (call
`self._start_process_state()` from `__init__`), rebuilt in every forked child right after the fork
(while the child still has one thread, through `os.register_at_fork`) and rebuilt on unpickling;
the listed fields are left out of the pickle.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, ClassVar

__all__ = ["ProcessLocal"]

_live: weakref.WeakSet[ProcessLocal] = weakref.WeakSet()


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


def _rebuild_all_in_child() -> None:
    for obj in list(_live):
        obj._init_process_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rebuild_all_in_child)
