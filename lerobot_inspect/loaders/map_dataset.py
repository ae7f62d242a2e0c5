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
import pyarrow as pa
import torch
from torch.utils.data import Dataset

from lerobot_inspect.errors import DatasetFormatError, OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.format.meta import parquet_file
from lerobot_inspect.loaders.samples import TabularFrames, assemble_sample
from lerobot_inspect.video.reader import VideoReader
from lerobot_inspect.video.remote import VideoAccess, make_video_reader, resolve_video_access
from lerobot_inspect.loaders.windows import delta_indices, query_indices

__all__ = ["MapDataset", "check_rows_in_order", "read_episode_rows", "resolve_delta_keys", "select_episodes"]


def read_episode_rows(meta: DatasetMeta, episodes: Sequence[int]) -> pa.Table:
    """Data rows of `episodes` (sorted ascending, i.e. file order), reading only their row groups.

    A file whose row groups do not map one-to-one to its episodes (a collapsed writer) is read whole
    and filtered, which is correct but reads more."""
    wanted = np.asarray(episodes, dtype=np.int64)
    lengths = meta.lengths
    groups = meta.episodes_in_data_file()
    if len(wanted) < 8:  # a streaming consumer's one-episode view: find its file without scanning all
        names = list(groups)
        files = sorted({meta.data_file(int(e)) for e in wanted}, key=names.index)
    else:
        files = list(groups)
    tables = []
    for rel in files:
        file_episodes = groups[rel]
        chosen = np.flatnonzero(np.isin(file_episodes, wanted))
        if not chosen.size:
            continue
        path = meta.path(rel)
        try:
            metadata, row_counts = meta.data_file_footer(rel)
            parquet = parquet_file(meta.fs, path, metadata=metadata)
            if np.array_equal(row_counts, lengths[file_episodes]):  # one row group per episode
                table = parquet.read_row_groups(chosen.tolist())
            else:
                table = parquet.read()
                mask = np.isin(table.column("episode_index").to_numpy(), file_episodes[chosen])
                table = table.filter(pa.array(mask))
        except FileNotFoundError:
            raise DatasetFormatError(
                f"{meta.url(rel)}: data file of episode {int(file_episodes[chosen[0]])} is missing; "
                "restore it (`lerobot-inspect audit` lists every missing file)"
            ) from None
        except (pa.ArrowException, OSError) as exc:
            raise DatasetFormatError(
                f"{meta.url(rel)}: cannot read the rows of episode {int(file_episodes[chosen[0]])} ({exc}); "
                "the Parquet file is truncated or corrupt, restore it"
            ) from exc
        tables.append(table)
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


def check_rows_in_order(meta: DatasetMeta, selected: np.ndarray, index: np.ndarray, episode_of_row: np.ndarray,
                        row_start: np.ndarray) -> None:
    """Refuse rows that are not each episode's frames in `index` order: windows are computed by
    position, so shuffled or renumbered rows would silently read the wrong neighbours."""
    lengths = meta.lengths[selected]
    owner = np.repeat(selected, lengths)
    expected = np.arange(len(index)) - np.repeat(row_start[selected], lengths) + np.repeat(
        meta.dataset_from_index[selected], lengths)
    bad = np.flatnonzero((index != expected) | (episode_of_row != owner))
    if bad.size:
        row = int(bad[0])
        episode = int(owner[row])
        raise DatasetFormatError(
            f"{meta.url(meta.data_file(episode))}: episode {episode}: row {row - int(row_start[episode])} has "
            f"index {int(index[row])} (episode_index {int(episode_of_row[row])}) where meta/episodes puts index "
            f"{int(expected[row])}; sort the rows by index and renumber them contiguously "
            "(`lerobot-inspect audit` shows every such row)"
        )


def select_episodes(meta: DatasetMeta, episodes: Sequence[int] | None) -> np.ndarray:
    """The chosen episodes in dataset (file) order, as LeRobot filters rows whatever order the list
    has; ids outside the dataset or an empty selection are refused rather than skipped."""
    if episodes is None:
        return np.arange(meta.num_episodes, dtype=np.int64)
    selected = np.unique(np.asarray(list(episodes), dtype=np.int64))
    outside = selected[(selected < 0) | (selected >= meta.num_episodes)]
    if outside.size:
        raise OptionError(f"episodes={list(episodes)} has {outside.tolist()} outside [0, {meta.num_episodes}) "
                          f"for {meta.root}")
    if selected.size == 0:
        raise OptionError(f"episodes=[] selects nothing from {meta.root}; pass None for all episodes")
    return selected


def resolve_delta_keys(meta: DatasetMeta, delta_timestamps: Mapping[str, Sequence[float]] | None,
                       *, tolerance_s: float) -> dict[str, np.ndarray]:
    """LeRobot's delta_indices, plus an early, named error for keys the dataset does not have."""
    deltas = delta_indices(delta_timestamps, meta.fps, tolerance_s=tolerance_s)
    unknown = [key for key in deltas if key not in meta.features]
    if unknown:
        raise OptionError(
            f"delta_timestamps has key(s) {', '.join(map(repr, unknown))} that the dataset does not have; "
            f"choose among {', '.join(meta.features)}"
        )
    return deltas


class MapDataset(Dataset):
    """Map-style torch Dataset over a LeRobot v3 root (local path or any fsspec URL)."""

    def __init__(
        self,
        root: str | Any,
        *,
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        video_reader: VideoReader | None = None,
        video_access: VideoAccess = "auto",
    ) -> None:
        self.meta = meta = root if isinstance(root, DatasetMeta) else DatasetMeta.open(root)
        # "auto": whole-file decoders on a local disk, header + episode span through the byte index elsewhere.
        resolve_video_access(meta, video_access)
        self.root = meta.root
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8
        self.image_transforms = image_transforms
        self.delta_timestamps = dict(delta_timestamps) if delta_timestamps else None
        self.deltas = resolve_delta_keys(meta, delta_timestamps, tolerance_s=tolerance_s)
        selected = select_episodes(meta, episodes)
        self.episodes = [int(e) for e in (episodes if episodes is not None else selected)]
        self.selected_episodes = selected
        table = read_episode_rows(meta, selected)
        self.tabular = TabularFrames(table, meta, source=meta.url("data"))
        self.index = self.tabular.numpy("index").astype(np.int64)
        self.episode_of_row = self.tabular.numpy("episode_index").astype(np.int64)
        self.timestamp = self.tabular.numpy("timestamp")
        self.task_index = self.tabular.numpy("task_index").astype(np.int64)
        expected = int(meta.lengths[selected].sum())
        if len(self.index) != expected:
            raise DatasetFormatError(
                f"{meta.url('data')}: read {len(self.index)} rows for episodes {selected.tolist()[:10]} but "
                f"meta/episodes says {expected}; run `lerobot-inspect audit {meta.root}`"
            )
        # Rows are grouped by episode in ascending order: row of abs index = abs - from + row_start.
        self._row_start = np.zeros(meta.num_episodes, dtype=np.int64)
        self._row_start[selected] = np.concatenate([[0], np.cumsum(meta.lengths[selected])[:-1]])
        check_rows_in_order(meta, selected, self.index, self.episode_of_row, self._row_start)
        meta.check_tasks_order()
        self._ep_from = meta.dataset_from_index
        self._ep_to = meta.dataset_to_index
        self.video = video_reader or make_video_reader(meta, video_access=video_access, tolerance_s=tolerance_s,
                                                       return_uint8=return_uint8)

    @property
    def fps(self) -> int:
        return self.meta.fps

    @property
    def num_frames(self) -> int:
        return len(self.index)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(idx, slice):
            return [self[i] for i in range(*idx.indices(len(self)))]
        if isinstance(idx, torch.Tensor):
            idx = int(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a dataset of {n} frames")
        return self.sample(idx % n)

    def window_rows(self, row: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Clamped rows and pad masks of every delta key for one row of this dataset."""
        episode = int(self.episode_of_row[row])
        ep_from, ep_to = int(self._ep_from[episode]), int(self._ep_to[episode])
        rows, pads = {}, {}
        for key, deltas in self.deltas.items():
            query, pad = query_indices(np.array([self.index[row]]), ep_from, ep_to, deltas)
            rows[key] = query[0] - ep_from + self._row_start[episode]
            pads[key] = pad[0]
        return rows, pads

    def sample(self, row: int) -> dict[str, Any]:
        """The LeRobot sample of one row (0 <= row < len)."""
        episode = int(self.episode_of_row[row])
        rows, pads = self.window_rows(row)
        requests = {}
        for camera in self.meta.video_keys:
            camera_rows = rows.get(camera)
            requests[camera] = self.timestamp[[row] if camera_rows is None else camera_rows].astype(np.float64)
        video = self.video.frames_for(episode, requests) if requests else {}
        return assemble_sample(
            tabular=self.tabular, row=row,
            window_rows={k: v for k, v in rows.items() if k not in self.meta.video_keys},
            is_pad=pads, video=video, task=self.meta.task(int(self.task_index[row])),
            image_transforms=self.image_transforms, camera_keys=self.meta.camera_keys,
        )

    def __repr__(self) -> str:
        return (f"MapDataset({self.root!r}, episodes={self.num_episodes}, frames={len(self)}, "
                f"cameras={self.meta.video_keys}, delta_keys={list(self.deltas)})")
