"""Seeded faults for a copy of a real fixture: each function breaks one thing the way it breaks in
the wild, so tests, the audit and the notebooks can show that it is caught and where.

Every function edits the dataset at `root` in place and returns what it touched (a relative path,
an episode) so a test can assert the finding names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "collapse_row_groups",
    "delete_file",
    "edit_episodes_column",
    "edit_info",
    "rewrite_data_column",
    "shift_video_timestamps",
    "swap_task_rows",
    "truncate_file",
]


def _episode_table(root: Path) -> tuple[Path, pa.Table]:
    path = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))[0]
    return path, pq.read_table(path)


def edit_info(root: str | Path, **changes: Any) -> str:
    """Overwrite keys of meta/info.json (a value of None deletes the key)."""
    path = Path(root) / "meta" / "info.json"
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info, indent=4))
    return "meta/info.json"


def truncate_file(root: str | Path, relative: str, *, keep_fraction: float = 0.5) -> str:
    """Cut a file short, as an interrupted download leaves it."""
    path = Path(root) / relative
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return relative


def delete_file(root: str | Path, relative: str) -> str:
    (Path(root) / relative).unlink()
    return relative


def edit_episodes_column(root: str | Path, column: str, episode: int, value: Any) -> str:
    """Set one cell of meta/episodes (assumes the episodes table fits in its first file)."""
    path, table = _episode_table(Path(root))
    values = table.column(column).to_pylist()
    values[episode] = value
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
    pq.write_table(table, path, row_group_size=10)
    return str(path.relative_to(root))


def shift_video_timestamps(root: str | Path, camera: str, episode: int, *, frames: int = 1) -> None:
    """Move an episode's from/to_timestamp by whole frames: the decoder returns a neighbour's frames
    within tolerance, which is the silent failure the audit and the frames notebook must catch."""
    fps = json.loads((Path(root) / "meta" / "info.json").read_text())["fps"]
    path, table = _episode_table(Path(root))
    for side in ("from", "to"):
        column = f"videos/{camera}/{side}_timestamp"
        values = table.column(column).to_pylist()
        values[episode] = values[episode] + frames / fps
        index = table.column_names.index(column)
        table = table.set_column(index, table.schema.field(index), pa.array(values, type=pa.float64()))
    pq.write_table(table, path, row_group_size=10)


def _data_file_of(root: Path, episode: int) -> tuple[str, pa.Table, list[int]]:
    info = json.loads((root / "meta" / "info.json").read_text())
    _, episodes = _episode_table(root)
    chunk = episodes.column("data/chunk_index")[episode].as_py()
    file = episodes.column("data/file_index")[episode].as_py()
    relative = info["data_path"].format(chunk_index=chunk, file_index=file)
    parquet = pq.ParquetFile(root / relative)
    sizes = [parquet.metadata.row_group(k).num_rows for k in range(parquet.metadata.num_row_groups)]
    return relative, parquet.read(), sizes


def _write_row_groups(path: Path, table: pa.Table, sizes: list[int]) -> None:
    with pq.ParquetWriter(path, table.schema, compression="snappy") as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size))
            start += size


def rewrite_data_column(root: str | Path, episode: int, column: str, edit: Any) -> str:
    """Apply `edit(values: np.ndarray) -> np.ndarray` to one column of one episode's rows, keeping one
    row group per episode; returns the data file's relative path."""
    root = Path(root)
    relative, table, sizes = _data_file_of(root, episode)
    rows = table.column("episode_index").to_numpy() == episode
    values = table.column(column).to_numpy().copy()
    values[rows] = edit(values[rows])
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
    _write_row_groups(root / relative, table, sizes)
    return relative


def collapse_row_groups(root: str | Path, episode: int = 0) -> str:
    """Rewrite the data file holding `episode` as a single row group (a non-LeRobot writer)."""
    root = Path(root)
    relative, table, _ = _data_file_of(root, episode)
    pq.write_table(table, root / relative, row_group_size=max(1, table.num_rows))
    return relative


def swap_task_rows(root: str | Path) -> str:
    """Reverse meta/tasks.parquet rows, keeping task_index with its task: lookups by row go wrong."""
    path = Path(root) / "meta" / "tasks.parquet"
    table = pq.read_table(path)
    order = np.arange(table.num_rows)[::-1].copy()
    pq.write_table(table.take(pa.array(order)), path)
    return "meta/tasks.parquet"
