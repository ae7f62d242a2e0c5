"""The one thing the sample builder asks of video, as a small protocol, and the source that has none.

Three sources implement it: `VideoReader` (whole local files), `ByteIndexVideoReader` (header plus
one episode's byte span, for remote roots) and `NoFrames` (samples without video, for probes that
only need the order). A source says which cameras it serves; the builder asks only for those, so a
sample without video also has no camera pad masks, whichever loader built it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["FrameSource", "NoFrames"]


@runtime_checkable
class FrameSource(Protocol):
    """Frames of one episode at times (seconds) relative to the episode's first frame."""

    @property
    def cameras(self) -> tuple[str, ...]:
        """The video keys this source decodes, in info.json order."""
        ...

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """(k, C, H, W) frames per requested camera, in the order of `requests`."""
        ...

    def prefetch(self, episodes: Iterable[int]) -> None:
        """A hint: these episodes come next (remote sources start fetching their bytes)."""
        ...


class NoFrames:
    """A source that serves no camera: samples keep every tabular key and lose the video keys
    together with their `_is_pad` masks."""

    cameras: tuple[str, ...] = ()

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        if requests:
            raise KeyError(f"NoFrames serves no camera; asked for {sorted(requests)}")
        return {}

    def prefetch(self, episodes: Iterable[int]) -> None:
        return None

    def __repr__(self) -> str:
        return "NoFrames()"
