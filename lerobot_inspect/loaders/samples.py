"""Rows of data Parquet turned into LeRobot samples: the one sample builder of every loader.

`SampleBuilder.sample(rows, row)` = rows + delta windows + a frame source -> the LeRobot sample
dict. The map-style dataset, the episode pool and the `datasets` pipeline all call it, so a frame
yields the same sample whichever loader reads it. A streaming consumer plans an admitted episode's
samples at once (`plan`: window rows, pad masks and camera timestamps as arrays) and emits each with
`planned_sample`; `sample` is the same path over a one-row plan.

LeRobot converts each row through Python objects and `torch.tensor`, which fixes the types a
training loop sees: every float feature (float64 included) comes back float32, int64 and bool
keep their type, shape-(1,) features become 0-d tensors, `image` features become float32 CHW in
[0, 1]. `TabularFrames` does the same conversion once per column with numpy, so reading a sample
is indexing, not a Python loop over the table. The builder fixes the key order LeRobot produces:
video keys, Parquet columns, `<key>_is_pad` in delta order, then `task`.

A null in a numeric column is refused here with the file, episode and column (LeRobot 0.6.1 fails
on it with "Could not infer dtype of NoneType"); NaN stays NaN, as in LeRobot, and the audit
reports it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from PIL import Image

from lerobot_inspect.errors import DatasetFormatError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io._forks import freeze_inherited
from lerobot_inspect.loaders.windows import query_indices
from lerobot_inspect.video.source import FrameSource

__all__ = ["EpisodeRows", "SampleBuilder", "SamplePlan", "TabularFrames", "decode_png"]


def decode_png(data: bytes, *, where: str) -> torch.Tensor:
    """PNG bytes -> float32 CHW in [0, 1], as torchvision's ToTensor gives LeRobot."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
    except (OSError, ValueError) as exc:
        raise DatasetFormatError(f"{where}: image bytes are not a readable PNG ({exc})") from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(torch.float32) / 255.0


class TabularFrames:
    """Non-video columns of some rows, converted once to the dtypes LeRobot's samples have."""

    def __init__(self, table: pa.Table, meta: DatasetMeta, *, source: str = "") -> None:
        self.meta = meta
        self.source = source
        self.num_rows = table.num_rows
        self.columns: list[str] = [name for name in meta.data_columns if name in table.column_names]
        missing = [name for name in meta.data_columns if name not in table.column_names]
        if missing:
            raise DatasetFormatError(
                f"{source}: columns {', '.join(missing)} are declared in meta/info.json but missing from "
                "the data Parquet; the file does not belong to this dataset or was rewritten"
            )
        self._arrays: dict[str, Any] = {}
        for name in self.columns:
            feature = meta.features[name]
            column = table.column(name)
            if not feature.is_image and feature.dtype not in ("string", "language"):
                _refuse_nulls(table, name, meta, source)
            if feature.is_image:
                self._arrays[name] = column.combine_chunks()
            elif feature.dtype in ("string", "language"):
                self._arrays[name] = column.to_pylist()
            else:
                self._arrays[name] = _to_numpy(column, name, source)
                _refuse_undeclared_shape(self._arrays[name], feature, table, source)

    def __len__(self) -> int:
        return self.num_rows

    def numpy(self, name: str) -> np.ndarray:
        """A numeric column as numpy (already in LeRobot's output dtype)."""
        return self._arrays[name]

    def value(self, name: str, rows: int | np.ndarray) -> Any:
        """One row (0-d or feature-shaped tensor) or a stacked window of rows (k, ...)."""
        feature = self.meta.features[name]
        data = self._arrays[name]
        if feature.is_image:
            if isinstance(rows, np.ndarray):
                return torch.stack([self._image(data, int(r)) for r in rows])
            return self._image(data, int(rows))
        if feature.dtype in ("string", "language"):
            return [data[int(r)] for r in rows] if isinstance(rows, np.ndarray) else data[int(rows)]
        return torch.from_numpy(np.array(data[rows]))

    def _image(self, column: pa.Array, row: int) -> torch.Tensor:
        cell = column[row].as_py()
        payload = cell.get("bytes") if isinstance(cell, dict) else cell
        if payload is None:
            raise DatasetFormatError(f"{self.source}: row {row} holds no image bytes")
        return decode_png(payload, where=f"{self.source} row {row}")


def _to_numpy(column: pa.ChunkedArray, name: str, source: str) -> np.ndarray:
    """A scalar, fixed-size-list or nested-list column as one numpy array in LeRobot's dtype."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    shape: list[int] = [len(array)]
    values: pa.Array = array
    while pa.types.is_fixed_size_list(values.type) or pa.types.is_list(values.type) or \
            pa.types.is_large_list(values.type):
        if pa.types.is_fixed_size_list(values.type):
            width = values.type.list_size
        else:
            offsets = np.asarray(values.offsets)
            widths = np.diff(offsets)
            if len(widths) and not (widths == widths[0]).all():
                raise DatasetFormatError(f"{source}: column {name!r} has rows of different lengths")
            width = int(widths[0]) if len(widths) else 0
        shape.append(width)
        values = values.flatten()
    if isinstance(values.type, pa.ExtensionType):
        values = values.storage
    flat = values.to_numpy(zero_copy_only=False)
    if flat.dtype.kind == "f":
        flat = flat.astype(np.float32, copy=False)
    return flat.reshape(shape)


def _first_null_row(array: pa.Array) -> int | None:
    """Row of the first null at any nesting level of a column (None when there is none)."""
    if array.null_count:
        return int(np.flatnonzero(pc.is_null(array).to_numpy(zero_copy_only=False))[0])
    if pa.types.is_fixed_size_list(array.type) or pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        inner = _first_null_row(array.flatten())
        if inner is not None:
            return int(pc.list_parent_indices(array)[inner].as_py())
    return None


def _where(table: pa.Table, row: int, meta: DatasetMeta, source: str) -> tuple[int | None, int, str]:
    """(episode, frame, data file) of a row of a data table, for errors."""
    episode = table.column("episode_index")[row].as_py() if "episode_index" in table.column_names else None
    frame = table.column("frame_index")[row].as_py() if "frame_index" in table.column_names else row
    try:
        shown = source if episode is None else meta.url(meta.data_file(int(episode)))
    except (LookupError, ValueError, DatasetFormatError):
        shown = source
    return episode, frame, shown


def _refuse_nulls(table: pa.Table, name: str, meta: DatasetMeta, source: str) -> None:
    column = table.column(name)
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    row = _first_null_row(array)
    if row is None:
        return
    episode, frame, shown = _where(table, row, meta, source)
    raise DatasetFormatError(
        f"{shown}: episode {episode}: column {name!r} is null at frame {frame}; a sample cannot hold a "
        "missing value. Fill or drop the episode's rows (`lerobot-inspect audit` counts the nulls per "
        "feature and episode)", file=shown, episode=episode, code="null-values",
        fix=f"fill the nulls of {name!r} or drop episode {episode}")


def _refuse_undeclared_shape(values: np.ndarray, feature: Any, table: pa.Table, source: str) -> None:
    """Rows must have the shape info.json declares (a (1,) feature may be stored as a scalar column)."""
    got, declared = tuple(values.shape[1:]), tuple(int(v) for v in feature.shape)
    if got == declared or (got in ((), (1,)) and declared in ((), (1,))) or not len(values):
        return
    raise DatasetFormatError(
        f"{source}: column {feature.name!r} holds rows of shape {list(got)} but meta/info.json declares "
        f"{list(declared)}; a model built from info.json would get the wrong width. Fix features.{feature.name}.shape "
        "or rewrite the column", file=source, code="feature-shape-mismatch",
        fix=f"make features.{feature.name}.shape in meta/info.json match the data")


class EpisodeRows:
    """The rows of whole episodes, converted once: what the builder indexes.

    Each episode's rows are contiguous and in `index` order (the loaders check it when they read
    them), so a window's rows are found by arithmetic: the row of absolute index q is
    `row + (q - index[row])`."""

    def __init__(self, table: pa.Table, meta: DatasetMeta, *, source: str) -> None:
        self.tabular = TabularFrames(table, meta, source=source)
        self.source = source
        self.index = self.tabular.numpy("index").astype(np.int64)
        self.episode_of_row = self.tabular.numpy("episode_index").astype(np.int64)
        self.timestamp = self.tabular.numpy("timestamp")
        self.task_index = self.tabular.numpy("task_index").astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class SamplePlan:
    """What `SampleBuilder.plan` computed for n rows: per delta key the (n, k) window rows (inside the
    `EpisodeRows`) and pad masks, per camera the (n, k) timestamps asked of the frame source, and
    whether all of a row's timestamps are numbers (a NaN one is refused at that row's sample)."""

    rows: np.ndarray
    window_rows: dict[str, np.ndarray]
    pads: dict[str, np.ndarray]
    requests: dict[str, np.ndarray]
    finite: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def requests_at(self, i: int) -> dict[str, np.ndarray]:
        """{camera: timestamps} of the i-th row's sample."""
        return {camera: times[i] for camera, times in self.requests.items()}


class SampleBuilder:
    """rows + delta windows + a frame source -> the LeRobot sample dict (one implementation).

    `deltas` are frame offsets per key (`loaders.rows.resolve_delta_keys`). Windows are clamped to
    the episode with `<key>_is_pad` marking the clamped slots, as LeRobot does. Cameras are asked
    of `frames` at the window rows' timestamps; a camera the source does not serve (`NoFrames`)
    leaves both its frames and its pad mask out of the sample."""

    def __init__(self, meta: DatasetMeta, *, deltas: Mapping[str, np.ndarray], frames: FrameSource,
                 image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.meta = meta
        self.deltas = dict(deltas)
        self.frames = frames
        self.image_transforms = image_transforms
        video = set(meta.video_keys)
        self.cameras = tuple(camera for camera in meta.video_keys if camera in set(frames.cameras))
        self._window_keys = [key for key in self.deltas if key not in video or key in self.cameras]
        self._camera_keys = meta.camera_keys
        self._ep_from = meta.dataset_from_index
        self._ep_to = meta.dataset_to_index
        self._offsets = {key: np.asarray(self.deltas[key], dtype=np.int64) for key in self._window_keys}

    def plan(self, rows: EpisodeRows, row_list: np.ndarray | Sequence[int]) -> SamplePlan:
        """Window rows, pad masks and camera requests of the samples of `rows`' rows `row_list`, all at
        once: a streaming consumer plans an episode's remaining samples when it admits the episode, so
        emitting a sample is indexing, not window arithmetic (which cost ~40 us per sample and key)."""
        at = np.asarray(row_list, dtype=np.int64).reshape(-1)
        if at.size and not ((at >= 0) & (at < len(rows))).all():
            raise IndexError(f"rows {at[(at < 0) | (at >= len(rows))][:4].tolist()} are outside 0..{len(rows) - 1}")
        episodes = rows.episode_of_row[at]
        ep_from, ep_to = self._ep_from[episodes][:, None], self._ep_to[episodes][:, None]
        index = rows.index[at][:, None]
        outside = np.flatnonzero((index[:, 0] < ep_from[:, 0]) | (index[:, 0] >= ep_to[:, 0]))
        if outside.size:  # a caller bug: query_indices names it
            k = int(outside[0])
            query_indices(int(index[k, 0]), int(ep_from[k, 0]), int(ep_to[k, 0]), np.zeros(1, dtype=np.int64))
        shift = at[:, None] - index
        window_rows, pads = {}, {}
        for key in self._window_keys:
            wanted = index + self._offsets[key][None, :]
            pads[key] = (wanted < ep_from) | (wanted >= ep_to)
            window_rows[key] = np.minimum(np.maximum(wanted, ep_from), ep_to - 1) + shift  # np.clip costs more
        requests = {camera: rows.timestamp[window_rows[camera] if camera in window_rows else at[:, None]]
                    .astype(np.float64) for camera in self.cameras}
        finite = np.ones(len(at), dtype=bool)
        for times in requests.values():
            finite &= np.isfinite(times).all(axis=1)
        return SamplePlan(at, window_rows, pads, requests, finite)

    def plan_one(self, rows: EpisodeRows, row: int) -> SamplePlan:
        """`plan(rows, [row])` with scalar arithmetic: random access plans one sample at a time, where
        the array version's set-up would cost more than the sample's windows."""
        episode = int(rows.episode_of_row[row])
        ep_from, ep_to = int(self._ep_from[episode]), int(self._ep_to[episode])
        index = int(rows.index[row])
        if not ep_from <= index < ep_to:  # a caller bug: query_indices names it
            query_indices(index, ep_from, ep_to, np.zeros(1, dtype=np.int64))
        shift = row - index
        window_rows, pads = {}, {}
        for key in self._window_keys:
            wanted = index + self._offsets[key]
            pads[key] = ((wanted < ep_from) | (wanted >= ep_to))[None]
            window_rows[key] = (np.minimum(np.maximum(wanted, ep_from), ep_to - 1) + shift)[None]
        requests, finite = {}, True
        for camera in self.cameras:
            times = rows.timestamp[window_rows.get(camera, [[row]])].astype(np.float64)
            requests[camera] = times
            finite = finite and bool(np.isfinite(times).all())
        return SamplePlan(np.array([row], dtype=np.int64), window_rows, pads, requests, np.array([finite]))

    def sample(self, rows: EpisodeRows, row: int) -> dict[str, Any]:
        """The LeRobot sample of `rows`' row `row`, in LeRobot's key order with its dtypes."""
        freeze_inherited()  # a DataLoader worker's first sample: stop its GC walking the parent's heap
        return self.planned_sample(rows, self.plan_one(rows, row), 0)

    def planned_sample(self, rows: EpisodeRows, plan: SamplePlan, i: int) -> dict[str, Any]:
        """The sample of `plan`'s i-th row (`plan` made by `self.plan(rows, ...)`)."""
        row = int(plan.rows[i])
        episode = int(rows.episode_of_row[row])
        item: dict[str, Any] = {}
        task_index = int(rows.task_index[row])
        if not 0 <= task_index < len(self.meta.tasks):  # LeRobot's iloc would return the last task for -1
            self._refuse(rows, row, f"task_index {task_index} is outside the tasks table "
                         f"(0..{len(self.meta.tasks) - 1})", code="task-index-out-of-range",
                         fix="rewrite task_index from meta/tasks.parquet")
        if self.cameras:
            requests = plan.requests_at(i)
            if not plan.finite[i]:
                for camera, times in requests.items():
                    if not np.isfinite(times).all():
                        window = plan.window_rows[camera][i] if camera in plan.window_rows else plan.rows[i:i + 1]
                        bad = int(window[~np.isfinite(times)][0])
                        self._refuse(rows, bad, f"timestamp {rows.timestamp[bad]} is not a number, so no frame "
                                     f"of {camera} can be chosen for it", code="nan-timestamp",
                                     fix="recompute timestamp = frame_index / fps")
            for camera, frames in self.frames.frames_for(episode, requests).items():
                item[camera] = frames.squeeze(0)  # as LeRobot: a single delta also gives (C, H, W)
        tabular = rows.tabular
        window_rows = plan.window_rows
        for name in tabular.columns:
            item[name] = tabular.value(name, window_rows[name][i] if name in window_rows else row)
        for key, pad in plan.pads.items():
            item[f"{key}_is_pad"] = torch.from_numpy(pad[i].copy())
        if self.image_transforms is not None:
            for key in self._camera_keys:
                if key in item:
                    item[key] = self.image_transforms(item[key])
        item["task"] = self.meta.task(task_index)
        return item

    def _refuse(self, rows: EpisodeRows, row: int, what: str, *, code: str, fix: str) -> None:
        episode = int(rows.episode_of_row[row])
        frame = int(rows.index[row]) - int(self._ep_from[episode])
        shown = self.meta.url(self.meta.data_file(episode))
        raise DatasetFormatError(f"{shown}: episode {episode}, frame {frame}: {what}; {fix} (`lerobot-inspect audit` "
                                 "lists every such row)", file=shown, episode=episode, code=code, fix=fix)
