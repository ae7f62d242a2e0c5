"""Random-access dataset in exact parity with LeRobot's `LeRobotDataset.__getitem__`.

For the same root and arguments, `MapDataset(root)[i]` has the keys, key order, shapes, dtypes and
values of `LeRobotDataset(repo_id, root=root)[i]` (see shared/LEROBOT_V3_FORMAT.md section 2):
rows of the selected episodes in file order whatever order `episodes` lists them in; delta windows
clamped to the episode with `<key>_is_pad`; video decoded at the clamped rows' timestamps plus the
episode's from_timestamp; frames squeezed on the window axis (so a single delta gives (C, H, W)).

Only the row groups of the selected episodes are read (LeRobot writes one per episode) and the
columns are converted once, so an item is array indexing plus the decode of its frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lerobot_inspect.loaders.rows import load_episode_rows, prepare_loader
from lerobot_inspect.video.remote import VideoAccess
from lerobot_inspect.video.source import FrameSource

__all__ = ["MapDataset"]


class MapDataset(Dataset):
    """Map-style torch Dataset over a LeRobot v3 root (local path or any fsspec URL).

    `video_reader` replaces the frame source `video_access` would pick (e.g.
    `VideoReader(meta, check_spans=False)`, or `NoFrames()` for samples without video)."""

    def __init__(
        self,
        root: str | Any,
        *,
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        video_reader: FrameSource | None = None,
        video_access: VideoAccess = "auto",
    ) -> None:
        inputs = prepare_loader(root, episodes=episodes, delta_timestamps=delta_timestamps, tolerance_s=tolerance_s,
                                return_uint8=return_uint8, image_transforms=image_transforms,
                                video_reader=video_reader, video_access=video_access)
        self.meta, self.deltas, self.video, self.builder = inputs.meta, inputs.deltas, inputs.video, inputs.builder
        self.root = self.meta.root
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8
        self.delta_timestamps = dict(delta_timestamps) if delta_timestamps else None
        self.selected_episodes = inputs.selected_episodes
        self.episodes = [int(e) for e in (episodes if episodes is not None else inputs.selected_episodes)]
        self.rows = load_episode_rows(self.meta, inputs.selected_episodes)

    @property
    def fps(self) -> int:
        return self.meta.fps

    @property
    def num_frames(self) -> int:
        return len(self.rows)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def index(self) -> np.ndarray:
        """Absolute frame index of each row (LeRobot's `index` column)."""
        return self.rows.index

    @property
    def episode_of_row(self) -> np.ndarray:
        return self.rows.episode_of_row

    @property
    def timestamp(self) -> np.ndarray:
        """Each row's timestamp (seconds from its episode's start), as decoded frames are asked for."""
        return self.rows.timestamp

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(idx, slice):
            return [self[i] for i in range(*idx.indices(len(self)))]
        if isinstance(idx, torch.Tensor):
            idx = int(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a dataset of {n} frames")
        return self.sample(idx % n)

    def sample(self, row: int) -> dict[str, Any]:
        """The LeRobot sample of one row (0 <= row < len)."""
        return self.builder.sample(self.rows, row)

    def __repr__(self) -> str:
        return (f"MapDataset({self.root!r}, episodes={self.num_episodes}, frames={len(self)}, "
                f"cameras={self.meta.video_keys}, delta_keys={list(self.deltas)})")
