"""Rows of data Parquet turned into LeRobot samples: one implementation for map-style and streaming.

LeRobot converts each row through Python objects and `torch.tensor`, which fixes the types a
training loop sees: every float feature (float64 included) comes back float32, int64 and bool
keep their type, shape-(1,) features become 0-d tensors, `image` features become float32 CHW in
[0, 1]. `TabularFrames` does the same conversion once per column with numpy, so reading a sample
is indexing, not a Python loop over the table. `assemble_sample` fixes the key order LeRobot
produces: video keys, Parquet columns, `<key>_is_pad` in delta order, then `task`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from lerobot_inspect.errors import DatasetFormatError
from lerobot_inspect.format import DatasetMeta

__all__ = ["TabularFrames", "assemble_sample", "decode_png"]


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
            if feature.is_image:
                self._arrays[name] = column.combine_chunks()
            elif feature.dtype in ("string", "language"):
                self._arrays[name] = column.to_pylist()
            else:
                self._arrays[name] = _to_numpy(column, name, source)

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
        if values.null_count:
            raise DatasetFormatError(f"{source}: column {name!r} has null rows")
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


def assemble_sample(
    *,
    tabular: TabularFrames,
    row: int,
    window_rows: Mapping[str, np.ndarray],
    is_pad: Mapping[str, np.ndarray],
    video: Mapping[str, torch.Tensor],
    task: str,
    image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
    camera_keys: list[str] | None = None,
) -> dict[str, Any]:
    """One sample in LeRobot's key order with its shapes and dtypes.

    `window_rows[key]` are the clamped rows (inside `tabular`) of each key with deltas;
    `video[key]` are decoded frames, (k, C, H, W), squeezed here as LeRobot does (`squeeze(0)`, so a
    single delta also gives (C, H, W))."""
    item: dict[str, Any] = {}
    for key, frames in video.items():
        item[key] = frames.squeeze(0)
    for name in tabular.columns:
        rows = window_rows.get(name)
        item[name] = tabular.value(name, row if rows is None else rows)
    for key, pad in is_pad.items():
        item[f"{key}_is_pad"] = torch.from_numpy(np.asarray(pad, dtype=bool).copy())
    if image_transforms is not None:
        for key in camera_keys or []:
            if key in item:
                item[key] = image_transforms(item[key])
    item["task"] = task
    return item
