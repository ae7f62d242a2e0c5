"""LeRobot v3 metadata: info.json, the episodes table and the tasks table, read through fsspec.

`DatasetMeta.open(root)` reads only the small meta files. Everything else (data Parquet, MP4s) is
located through the path templates in info.json and the per-episode chunk/file columns, because in
v3 many episodes share a file and each camera rolls over to new files on its own.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import DatasetFormatError

__all__ = ["DEFAULT_FEATURES", "DatasetMeta", "Feature", "open_fs", "parquet_file", "read_parquet"]

CODEBASE_VERSION = "v3.0"
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
REQUIRED_INFO_KEYS = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")
V2_HINT = (
    "convert it with LeRobot's v2.1 -> v3.0 converter "
    "(`python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=...`), then open the result"
)


def open_fs(root: str | Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """Resolve a local path or any fsspec URL to (filesystem, root path inside it)."""
    fs, path = fsspec.core.url_to_fs(str(root))
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class Feature:
    """One entry of info.json `features`; shapes are tuples, as LeRobot holds them in memory."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    names: Any = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"

    @property
    def is_image(self) -> bool:
        return self.dtype == "image"


@dataclass
class DatasetMeta:
    """What info.json, meta/episodes and meta/tasks say about a dataset, with per-episode arrays.

    Episode arrays are indexed by position in the episodes table, which LeRobot requires to equal the
    episode index (`validate` checks it)."""

    root: str
    fs: fsspec.AbstractFileSystem
    root_path: str
    info: dict[str, Any]
    features: dict[str, Feature]
    episodes: pa.Table
    tasks: list[str]
    episode_files: list[str]
    task_indices: list[int] = field(default_factory=list)
    _groups: dict[tuple[str, str | None], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _footers: dict[str, tuple[pq.FileMetaData, np.ndarray]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into spawned workers: parsed Parquet footers are rebuilt there on first use."""
        state = self.__dict__.copy()
        state["_footers"] = {}
        return state

    def data_file_footer(self, relative: str) -> tuple[pq.FileMetaData, np.ndarray]:
        """A data file's parsed footer and its row-group row counts, read once per process.

        A file with thousands of episodes has thousands of row groups; parsing its footer for every
        episode a streaming consumer admits costs more than reading the episode."""
        cached = self._footers.get(relative)
        if cached is None:
            metadata = parquet_file(self.fs, self.path(relative)).metadata
            counts = np.fromiter((metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)),
                                 dtype=np.int64, count=metadata.num_row_groups)
            cached = self._footers[relative] = (metadata, counts)
        return cached

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, root: str | Any) -> DatasetMeta:
        """Read info.json, the episodes table (without its stats columns) and the tasks table."""
        fs, root_path = open_fs(root)
        info = read_info(fs, root_path)
        features = {
            name: Feature(
                name=name,
                dtype=str(spec.get("dtype")),
                shape=tuple(spec.get("shape") or ()),
                names=spec.get("names"),
                info=dict(spec.get("info") or {}),
            )
            for name, spec in info["features"].items()
        }
        episode_files = find_episode_files(fs, root_path, info)
        episodes = read_episodes(fs, root_path, episode_files)
        tasks, task_indices = read_tasks(fs, root_path)
        return cls(str(root), fs, root_path, info, features, episodes, tasks, episode_files, task_indices)

    # ------------------------------------------------------------------ info
    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def total_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def chunks_size(self) -> int:
        return int(self.info.get("chunks_size", 1000))

    @property
    def video_keys(self) -> list[str]:
        return [name for name, feat in self.features.items() if feat.is_video]

    @property
    def image_keys(self) -> list[str]:
        return [name for name, feat in self.features.items() if feat.is_image]

    @property
    def camera_keys(self) -> list[str]:
        return [name for name, feat in self.features.items() if feat.is_video or feat.is_image]

    @property
    def data_columns(self) -> list[str]:
        """Parquet columns in feature order: every feature but the videos."""
        return [name for name, feat in self.features.items() if not feat.is_video]

    @property
    def num_episodes(self) -> int:
        return self.episodes.num_rows

    # ------------------------------------------------------------------ episode arrays
    def column(self, name: str) -> np.ndarray:
        """One episodes-table column as a read-only numpy array (converted once; loaders ask per
        sample); names the file when it is missing."""
        cached = self._columns.get(name)
        if cached is not None:
            return cached
        if name not in self.episodes.column_names:
            raise DatasetFormatError(
                f"{self.path('meta/episodes')}: column {name!r} is missing from the episodes table; "
                "the dataset was not written by LeRobot v3 or its meta was edited by hand"
            )
        array = self.episodes.column(name).to_numpy(zero_copy_only=False)
        array.flags.writeable = False
        self._columns[name] = array
        return array

    @property
    def episode_index(self) -> np.ndarray:
        return self.column("episode_index").astype(np.int64, copy=False)

    @property
    def lengths(self) -> np.ndarray:
        return self.column("length").astype(np.int64, copy=False)

    @property
    def dataset_from_index(self) -> np.ndarray:
        return self.column("dataset_from_index").astype(np.int64, copy=False)

    @property
    def dataset_to_index(self) -> np.ndarray:
        return self.column("dataset_to_index").astype(np.int64, copy=False)

    def episode_tasks(self, episode: int) -> list[str]:
        return list(self.episodes.column("tasks")[episode].as_py() or [])

    # ------------------------------------------------------------------ paths
    def path(self, relative: str) -> str:
        """Path of a dataset-relative file inside the filesystem."""
        return posixpath.join(self.root_path, relative) if self.root_path else relative

    def url(self, relative: str) -> str:
        """Human-readable location of a file, for error messages."""
        return posixpath.join(str(self.root).rstrip("/"), relative)

    def data_file(self, episode: int) -> str:
        """Relative path of the data Parquet file that holds an episode's rows."""
        chunk = int(self.episodes.column("data/chunk_index")[episode].as_py())
        file = int(self.episodes.column("data/file_index")[episode].as_py())
        return self.info["data_path"].format(chunk_index=chunk, file_index=file)

    def video_file(self, episode: int, camera: str) -> str:
        """Relative path of the MP4 that holds an episode's frames for one camera."""
        template = self.info.get("video_path")
        if not template:
            raise DatasetFormatError(
                f"{self.url('meta/info.json')}: video_path is null but {camera!r} is a video feature"
            )
        chunk = int(self.episodes.column(f"videos/{camera}/chunk_index")[episode].as_py())
        file = int(self.episodes.column(f"videos/{camera}/file_index")[episode].as_py())
        return template.format(video_key=camera, chunk_index=chunk, file_index=file)

    def video_span_s(self, episode: int, camera: str) -> tuple[float, float]:
        """(from_timestamp, to_timestamp) of an episode inside its MP4, in seconds."""
        start = float(self.episodes.column(f"videos/{camera}/from_timestamp")[episode].as_py())
        stop = float(self.episodes.column(f"videos/{camera}/to_timestamp")[episode].as_py())
        return start, stop

    def data_files(self) -> list[str]:
        """Every data file the episodes table points at, in order, once each."""
        chunks = self.column("data/chunk_index")
        files = self.column("data/file_index")
        return _unique_paths(self.info["data_path"], chunks, files)

    def video_files(self, camera: str) -> list[str]:
        """Every MP4 of one camera the episodes table points at, in order, once each."""
        chunks = self.column(f"videos/{camera}/chunk_index")
        files = self.column(f"videos/{camera}/file_index")
        return _unique_paths(self.info["video_path"], chunks, files, video_key=camera)

    def episodes_in_data_file(self) -> dict[str, np.ndarray]:
        """Data file -> positions of the episodes it holds, in table order (computed once: loaders
        ask for it on every episode they admit)."""
        key = ("data", None)
        if key not in self._groups:
            self._groups[key] = _group_by_path(self.info["data_path"], self.column("data/chunk_index"),
                                               self.column("data/file_index"))
        return self._groups[key]

    def episodes_in_video_file(self, camera: str) -> dict[str, np.ndarray]:
        """MP4 of one camera -> positions of the episodes it holds, in table order (computed once)."""
        key = ("video", camera)
        if key not in self._groups:
            self._groups[key] = _group_by_path(
                self.info["video_path"], self.column(f"videos/{camera}/chunk_index"),
                self.column(f"videos/{camera}/file_index"), video_key=camera)
        return self._groups[key]

    def check_tasks_order(self) -> None:
        """Refuse a tasks table whose rows are not in task_index order: every task string would be
        wrong (LeRobot looks tasks up by row and returns them silently)."""
        wrong = [row for row, claimed in enumerate(self.task_indices) if claimed != row]
        if wrong:
            row = wrong[0]
            raise DatasetFormatError(
                f"{self.url('meta/tasks.parquet')}: row {row} holds task_index {self.task_indices[row]}; rows "
                "must be in task_index order or every sample gets the wrong task string. Sort the table by "
                "task_index (`lerobot-inspect audit` reports it as tasks-out-of-order)"
            )

    def task(self, task_index: int) -> str:
        """The task string, looked up by row as LeRobot does (`tasks.iloc[task_index].name`)."""
        try:
            return self.tasks[task_index]
        except IndexError:
            raise DatasetFormatError(
                f"{self.url('meta/tasks.parquet')}: task_index {task_index} is out of range "
                f"(the table has {len(self.tasks)} tasks); rewrite meta/tasks.parquet"
            ) from None


# ---------------------------------------------------------------------- readers
def read_json(fs: fsspec.AbstractFileSystem, path: str, shown: str) -> Any:
    try:
        with fs.open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        raise DatasetFormatError(f"{shown}: file not found; is this the root of a LeRobot dataset?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{shown}: not valid JSON ({exc}); restore the file from the source") from exc


def read_info(fs: fsspec.AbstractFileSystem, root_path: str) -> dict[str, Any]:
    """info.json, checked for the keys every reader needs and for the v3 codebase version."""
    shown = posixpath.join(root_path, "meta/info.json")
    info = read_json(fs, shown, shown)
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{shown}: expected a JSON object, got {type(info).__name__}")
    version = str(info.get("codebase_version", ""))
    if version.startswith("v2") or version.startswith("v1"):
        raise DatasetFormatError(
            f"{shown}: codebase_version {version!r} is a LeRobot {version[:2]}.x dataset; "
            f"lerobot_inspect reads v3.0 only: {V2_HINT}"
        )
    missing = [key for key in REQUIRED_INFO_KEYS if key not in info]
    if missing:
        raise DatasetFormatError(f"{shown}: missing {', '.join(missing)}; not a LeRobot v3 info.json")
    if version != CODEBASE_VERSION:
        raise DatasetFormatError(f"{shown}: codebase_version {version!r} is not supported; expected 'v3.0'")
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        raise DatasetFormatError(f"{shown}: fps must be a positive integer, got {info['fps']!r}")
    if not isinstance(info["features"], dict) or not info["features"]:
        raise DatasetFormatError(f"{shown}: features must be a non-empty object")
    for name, spec in info["features"].items():
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise DatasetFormatError(f"{shown}: feature {name!r} needs 'dtype' and 'shape'")
    return info


def find_episode_files(fs: fsspec.AbstractFileSystem, root_path: str, info: dict[str, Any]) -> list[str]:
    """Relative paths of meta/episodes/chunk-XXX/file-XXX.parquet, in chunk/file order.

    Listing works on local disks and object stores; plain HTTP cannot list, so there we walk the
    chunk/file numbers until the first missing file (writers never leave gaps)."""
    base = posixpath.join(root_path, "meta/episodes")
    try:
        found = sorted(fs.glob(posixpath.join(base, "chunk-*/file-*.parquet")))
        if found:
            return [posixpath.relpath(path, root_path) if root_path else path for path in found]
    except (NotImplementedError, ValueError, OSError):
        pass
    relative = []
    chunks_size = int(info.get("chunks_size", 1000))
    chunk, file = 0, 0
    while True:
        rel = f"meta/episodes/chunk-{chunk:03d}/file-{file:03d}.parquet"
        if not fs.exists(posixpath.join(root_path, rel)):
            break
        relative.append(rel)
        file += 1
        if file >= chunks_size:
            chunk, file = chunk + 1, 0
    if not relative:
        raise DatasetFormatError(
            f"{base}: no chunk-XXX/file-XXX.parquet found; the episodes table is missing "
            "(a v2.x dataset keeps episodes.jsonl instead)"
        )
    return relative


def parquet_file(fs: fsspec.AbstractFileSystem, path: str, *,
                 metadata: pq.FileMetaData | None = None) -> pq.ParquetFile:
    """Open a Parquet file for footer and row-group reads.

    Local files go through Arrow's native reader. Handing Arrow a Python file object makes it hold
    Python buffers in its I/O threads, and with torch loaded the interpreter then aborts at exit
    now and then ("terminate called without an active exception", measured 5 in 12 runs). Remote
    files have no native reader, so they use the fsspec file without Arrow's pre-buffering."""
    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(path, metadata=metadata)
    return pq.ParquetFile(fs.open(path, "rb"), metadata=metadata, pre_buffer=False)


def read_parquet(fs: fsspec.AbstractFileSystem, path: str, *, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file, with pyarrow's errors turned into a DatasetFormatError naming the file."""
    try:
        return parquet_file(fs, path).read(columns=columns)
    except FileNotFoundError:
        raise DatasetFormatError(f"{path}: file not found; the dataset is incomplete") from None
    except (pa.ArrowException, OSError) as exc:
        raise DatasetFormatError(
            f"{path}: unreadable Parquet ({exc}); the file is truncated or corrupt, restore it"
        ) from exc


def read_episodes(fs: fsspec.AbstractFileSystem, root_path: str, relative: list[str]) -> pa.Table:
    """The episodes table without its stats/* columns (as LeRobot's `load_episodes`)."""
    tables = []
    for rel in relative:
        path = posixpath.join(root_path, rel)
        try:
            schema = parquet_file(fs, path).schema_arrow
        except FileNotFoundError:
            raise DatasetFormatError(f"{path}: file not found; the dataset is incomplete") from None
        except (pa.ArrowException, OSError) as exc:
            raise DatasetFormatError(
                f"{path}: unreadable Parquet ({exc}); the file is truncated or corrupt, restore it"
            ) from exc
        columns = [name for name in schema.names if not name.startswith("stats/")]
        tables.append(read_parquet(fs, path, columns=columns))
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as exc:
        raise DatasetFormatError(
            f"{posixpath.join(root_path, 'meta/episodes')}: episode files disagree on their schema ({exc})"
        ) from exc


def read_tasks(fs: fsspec.AbstractFileSystem, root_path: str) -> tuple[list[str], list[int]]:
    """Task strings by row and the task_index each row claims.

    LeRobot looks a task up by row position, so a table whose rows are not in task_index order
    gives wrong task strings; callers compare the two."""
    path = posixpath.join(root_path, "meta/tasks.parquet")
    table = read_parquet(fs, path)
    names = [name for name in table.column_names if name != "task_index"]
    column = "task" if "task" in table.column_names else (names[0] if names else None)
    if column is None:
        raise DatasetFormatError(f"{path}: no 'task' column; expected columns [task_index, task]")
    tasks = [str(t) for t in table.column(column).to_pylist()]
    if "task_index" in table.column_names:
        claimed = [int(i) for i in table.column("task_index").to_pylist()]
    else:
        claimed = list(range(len(tasks)))
    return tasks, claimed


def _unique_paths(template: str, chunks: np.ndarray, files: np.ndarray, **fmt: str) -> list[str]:
    return list(_group_by_path(template, chunks, files, **fmt))


def _group_by_path(template: str, chunks: np.ndarray, files: np.ndarray, **fmt: str) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for position, (chunk, file) in enumerate(zip(chunks.tolist(), files.tolist(), strict=True)):
        path = template.format(chunk_index=int(chunk), file_index=int(file), **fmt)
        groups.setdefault(path, []).append(position)
    return {path: np.asarray(positions, dtype=np.int64) for path, positions in groups.items()}

