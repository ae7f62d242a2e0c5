"""What every loader sets up the same way: the metadata, the episode selection, the delta keys, the
frame source and the sample builder (`prepare_loader`), and each episode's rows read from its own
Parquet row group (LeRobot writes one per episode), checked before use."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from lerobot_inspect.errors import DatasetFormatError, OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.format.meta import parquet_file
from lerobot_inspect.loaders.samples import EpisodeRows, SampleBuilder
from lerobot_inspect.loaders.windows import delta_indices
from lerobot_inspect.video.remote import VideoAccess, make_video_reader, resolve_video_access
from lerobot_inspect.video.source import FrameSource, NoFrames

__all__ = [
    "LoaderInputs",
    "check_rows_in_order",
    "load_episode_rows",
    "prepare_loader",
    "read_episode_rows",
    "resolve_delta_keys",
    "select_episodes",
]


@dataclass(frozen=True)
class LoaderInputs:
    """The shared part of every loader: what it reads and how it builds a sample."""

    meta: DatasetMeta
    deltas: dict[str, np.ndarray]
    selected_episodes: np.ndarray
    video: FrameSource
    builder: SampleBuilder


def prepare_loader(
    root: str | Any,
    *,
    episodes: Sequence[int] | None,
    delta_timestamps: Mapping[str, Sequence[float]] | None,
    tolerance_s: float,
    return_uint8: bool,
    image_transforms: Callable[[torch.Tensor], torch.Tensor] | None,
    video_reader: FrameSource | None,
    video_access: VideoAccess,
    decode_video: bool = True,
) -> LoaderInputs:
    """Open the metadata (or take a `DatasetMeta`), check the options against it, pick the frame
    source ("auto": whole files on a local disk, header + episode span through the byte index
    elsewhere; `NoFrames` when `decode_video=False`, so no index is loaded) and build the sampler.
    Errors surface here, at construction, not at the first sample."""
    meta = root if isinstance(root, DatasetMeta) else DatasetMeta.open(root)
    resolve_video_access(meta, video_access)
    deltas = resolve_delta_keys(meta, delta_timestamps, tolerance_s=tolerance_s)
    selected = select_episodes(meta, episodes)
    meta.check_tasks_order()
    if not decode_video:
        video: FrameSource = NoFrames()
    else:
        video = video_reader or make_video_reader(meta, video_access=video_access, tolerance_s=tolerance_s,
                                                  return_uint8=return_uint8)
    builder = SampleBuilder(meta, deltas=deltas, frames=video, image_transforms=image_transforms)
    return LoaderInputs(meta, deltas, selected, video, builder)


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


def check_rows_in_order(meta: DatasetMeta, selected: np.ndarray, rows: EpisodeRows) -> None:
    """Refuse rows that are not each episode's frames in `index` order: windows are computed by
    position, so shuffled or renumbered rows would silently read the wrong neighbours."""
    lengths = meta.lengths[selected]
    owner = np.repeat(selected, lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first_index = np.repeat(meta.dataset_from_index[selected], lengths)
    expected = np.arange(len(owner)) - np.repeat(starts, lengths) + first_index
    bad = np.flatnonzero((rows.index != expected) | (rows.episode_of_row != owner))
    if bad.size:
        row = int(bad[0])
        episode = int(owner[row])
        shown = meta.url(meta.data_file(episode))
        raise DatasetFormatError(
            f"{shown}: episode {episode}: row {row - int(starts[np.searchsorted(selected, episode)])} has "
            f"index {int(rows.index[row])} (episode_index {int(rows.episode_of_row[row])}) where meta/episodes puts "
            f"index {int(expected[row])}; sort the rows by index and renumber them contiguously "
            "(`lerobot-inspect audit` shows every such row)", file=shown, episode=episode, code="frames-out-of-order",
            fix="sort the rows by index and renumber them contiguously")


def load_episode_rows(meta: DatasetMeta, selected: np.ndarray) -> EpisodeRows:
    """The converted rows of `selected` (ascending episode ids), checked: as many rows as
    meta/episodes says, each episode's frames contiguous and in index order."""
    table = read_episode_rows(meta, selected)
    rows = EpisodeRows(table, meta, source=meta.url(meta.data_file(int(selected[0]))) if len(selected) == 1
                       else meta.url("data"))
    expected = int(meta.lengths[selected].sum())
    if len(rows) != expected:
        raise DatasetFormatError(
            f"{rows.source}: read {len(rows)} rows for episodes {selected.tolist()[:10]} but "
            f"meta/episodes says {expected}; run `lerobot-inspect audit {meta.root}`", file=rows.source,
            episode=int(selected[0]), fix=f"run `lerobot-inspect audit {meta.root}`")
    check_rows_in_order(meta, selected, rows)
    return rows


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
