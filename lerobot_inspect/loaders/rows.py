"""What every loader sets up the same way: the metadata, the episode selection, the delta keys, the
frame source and the sample builder (`prepare_loader`), and each episode's rows read from its own
Parquet row group (LeRobot writes one per episode), checked before use."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lerobot_inspect.errors import DatasetFormatError, FetchError, OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.format.meta import file_size, parquet_file, read_range
from lerobot_inspect.io.parquet_footer import (
    CompactFooter,
    FooterFormatError,
    read_compact_footer,
    single_row_group_footer,
)
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
        if meta.video_keys:
            # Here, before a DataLoader forks its workers: importing torchcodec imports torch._dynamo
            # and sympy (~800 modules, 1.3 s and +110 MB with torch loaded), which each worker would
            # otherwise pay again at its first decode.
            import torchcodec.decoders  # noqa: F401
        video = video_reader or make_video_reader(meta, video_access=video_access, tolerance_s=tolerance_s,
                                                  return_uint8=return_uint8)
    builder = SampleBuilder(meta, deltas=deltas, frames=video, image_transforms=image_transforms)
    return LoaderInputs(meta, deltas, selected, video, builder)


# Uncompressed bytes a row of a declared feature may take before a row group is refused as a
# decompression bomb: numbers at 8 bytes per value, images at 4 bytes per pixel channel, strings at
# 64 KiB, each with 16x headroom for encodings and offsets.
_STRING_ROW_BYTES = 64 << 10
_HEADROOM = 16
_VALUE_BYTES = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}


def _row_bytes_bound(meta: DatasetMeta, name: str) -> int:
    """Decoded bytes one row of a declared feature may take, with headroom."""
    feature = meta.features[name]
    values = int(np.prod(feature.shape)) if feature.shape else 1
    if feature.is_image:
        per_row = 4 * values
    elif feature.dtype in ("string", "language"):
        per_row = _STRING_ROW_BYTES
    else:
        per_row = 8 * max(values, 1)
    return _HEADROOM * per_row + 1024


def read_episode_rows(meta: DatasetMeta, episodes: Sequence[int]) -> pa.Table:
    """Data rows of `episodes` (sorted ascending, i.e. file order), reading only their row groups
    and only the columns info.json declares (an undeclared column is never read, whatever it holds).

    A file whose row groups do not map one-to-one to its episodes (a collapsed writer) is read whole
    and filtered, which is correct but reads more. Remote files are read through range requests
    with retries (`format.meta.parquet_file`)."""
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
        first = int(file_episodes[chosen[0]])
        shown = meta.url(rel)
        try:
            footer = compact_footer(meta, rel)
            columns = [name for name in meta.data_columns if name in footer.column_names]
            one_per_episode = np.array_equal(footer.row_counts, lengths[file_episodes])
            if one_per_episode and chosen.size <= _ROW_GROUPS_ONE_BY_ONE:
                # A streaming consumer's episode: its row group alone, under a one-row-group footer.
                parts = []
                for k in chosen.tolist():
                    start, stop = (int(v) for v in footer.spans[k])
                    small = single_row_group_footer(footer, _read_range(meta, rel, start, stop),
                                                    int(footer.row_counts[k]))
                    _refuse_inflated(meta, small, np.array([0]), columns, shown, file_episodes[k:k + 1], numbers=[k])
                    parts.append(parquet_file(meta.fs, meta.path(rel), metadata=small)
                                 .read_row_groups([0], columns=columns))
                table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            else:  # many episodes at once (map-style) or a collapsed writer: the whole footer, not kept
                parquet = parquet_file(meta.fs, meta.path(rel))
                metadata = parquet.metadata
                if one_per_episode:
                    _refuse_inflated(meta, metadata, chosen, columns, shown, file_episodes)
                    table = parquet.read_row_groups(chosen.tolist(), columns=columns)
                else:
                    _refuse_inflated(meta, metadata, np.arange(metadata.num_row_groups), columns, shown,
                                     file_episodes)
                    table = parquet.read(columns=columns)
                    mask = np.isin(table.column("episode_index").to_numpy(), file_episodes[chosen])
                    table = table.filter(pa.array(mask))
                del parquet, metadata
        except FooterFormatError as exc:
            raise DatasetFormatError(
                f"{shown}: cannot read the rows of episode {first} (Parquet footer: {exc}); the Parquet file is "
                "truncated or corrupt, restore it",
                file=shown, episode=first, fix="download the file again") from exc
        except FileNotFoundError:
            raise DatasetFormatError(
                f"{shown}: data file of episode {first} is missing; restore it (`lerobot-inspect audit` lists "
                "every missing file)", file=shown, episode=first, fix="restore the file") from None
        except FetchError:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise DatasetFormatError(
                f"{shown}: cannot read the rows of episode {first} ({exc}); the Parquet file is truncated or "
                "corrupt, restore it", file=shown, episode=first, fix="download the file again") from exc
        tables.append(table)
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


# Up to this many row groups of one file are read one by one under small footers; more (a map-style
# dataset reading everything) parse the file's whole footer once, transiently.
_ROW_GROUPS_ONE_BY_ONE = 64
_FOOTERS: dict[int, dict[str, CompactFooter]] = {}


def compact_footer(meta: DatasetMeta, rel: str) -> CompactFooter:
    """Row counts and row-group spans of a data file's footer, read once per process and dataset.

    Not pyarrow's FileMetaData: decoded, that takes ~100 MB for a file of 10,000 episodes, held for
    the life of the loader (16 bytes per row group here; `io.parquet_footer`)."""
    per_meta = _FOOTERS.get(id(meta))
    if per_meta is None:
        per_meta = _FOOTERS[id(meta)] = {}
        weakref.finalize(meta, _FOOTERS.pop, id(meta), None)
    footer = per_meta.get(rel)
    if footer is None:
        size = _file_size(meta, rel)
        footer = per_meta[rel] = read_compact_footer(lambda a, b: _read_range(meta, rel, a, b), size,
                                                     name=meta.url(rel))
    return footer


def _file_size(meta: DatasetMeta, rel: str) -> int:
    return file_size(meta.fs, meta.path(rel))


def _read_range(meta: DatasetMeta, rel: str, start: int, stop: int) -> bytes:
    return read_range(meta.fs, meta.path(rel), start, stop)


def _refuse_inflated(meta: DatasetMeta, metadata: pq.FileMetaData, row_groups: np.ndarray, columns: list[str],
                     shown: str, file_episodes: np.ndarray, *, numbers: list[int] | None = None) -> None:
    """Refuse a row group whose declared columns would decode to far more than their rows can hold
    (a decompression bomb: a few KB stored, GBs decoded). `numbers`: the row groups' numbers in the
    file when `metadata` is a one-row-group footer (for the message)."""
    bounds = {name: _row_bytes_bound(meta, name) for name in columns}
    for position, k in enumerate(row_groups.tolist()):
        group = metadata.row_group(int(k))
        decoded = dict.fromkeys(columns, 0)
        for c in range(group.num_columns):
            chunk = group.column(c)
            owner = next((name for name in columns if chunk.path_in_schema == name
                          or chunk.path_in_schema.startswith(f"{name}.")), None)
            if owner is not None:
                # Encoded sizes hide run-length and dictionary encoding; values x width does not.
                width = _VALUE_BYTES.get(chunk.physical_type, 0)
                decoded[owner] += max(chunk.total_uncompressed_size, chunk.num_values * width)
        for name, size in decoded.items():
            if size > bounds[name] * max(group.num_rows, 1):
                episode = int(file_episodes[k]) if k < len(file_episodes) else None
                number = k if numbers is None else numbers[position]
                raise DatasetFormatError(
                    f"{shown}: row group {number} (episode {episode}): column {name!r} would decode to {size} "
                    f"bytes for {group.num_rows} rows, far more than its declared shape "
                    f"{list(meta.features[name].shape)} holds; the file is corrupt or crafted. "
                    "Restore it from the source", file=shown,
                    episode=episode, code="data-inflated", fix="restore the data file from the dataset's source")


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
