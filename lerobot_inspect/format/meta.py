"""LeRobot v3 metadata: info.json, the episodes table and the tasks table, read through fsspec.

`DatasetMeta.open(root)` reads only the small meta files. Everything else (data Parquet, MP4s) is
located through the path templates in info.json and the per-episode chunk/file columns, because in
v3 many episodes share a file and each camera rolls over to new files on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import posixpath
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import DatasetFormatError, FetchError, OptionError
from lerobot_inspect.io.fs import escape_problem, is_http, join, open_root
from lerobot_inspect.io.parquet_footer import FooterFormatError, read_compact_footer, row_groups_footer
from lerobot_inspect.io.ranges import reader_for
from lerobot_inspect.io.sparse import SparseFile

__all__ = [
    "DEFAULT_FEATURES",
    "DatasetMeta",
    "Feature",
    "PathTemplate",
    "parquet_file",
    "read_parquet",
]

CODEBASE_VERSION = "v3.0"
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
REQUIRED_INFO_KEYS = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")
V2_HINT = (
    "convert it with LeRobot's v2.1 -> v3.0 converter "
    "(`python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=...`), then open the result"
)


# Limits on what a dataset may make us hold. A dataset is input from strangers: every size below is
# far above what LeRobot writes and far below what would exhaust a machine.
MAX_INFO_JSON_BYTES = 16 << 20
"""info.json is a few KB; a bigger one is refused before it is read whole."""
MAX_INFO_DEPTH = 32
"""Nesting depth of info.json values (LeRobot's deepest is features/<name>/info/<key>/...: 5)."""
MAX_INT = 2**62
"""Upper bound of every count and index info.json declares."""
MAX_SHAPE_DIMS = 8
MAX_TEMPLATE_WIDTH = 20
"""Widest integer field a path template may ask for ({chunk_index:03d} is 3)."""
META_THRIFT_STRING_LIMIT = 16 << 20
"""Longest string a meta Parquet footer may hold (pandas/HF metadata are a few KB)."""
META_MIN_CONTAINER_LIMIT = 10_000
"""Footer lists (row groups, columns) a meta Parquet file may hold whatever info.json declares."""
META_MAX_UNCOMPRESSED_BYTES = 256 << 20
META_MAX_COMPRESSION_RATIO = 1000
"""A meta table whose columns inflate past both bounds is a compression bomb, not metadata."""
META_COMPACT_FOOTER_BYTES = 1 << 20
META_ROW_GROUPS_PER_SLICE = 100
"""A meta table whose serialized footer is larger than this is read in slices of row groups."""
PREFETCH_ROW_GROUPS_MAX_BYTES = 64 << 20
"""Row groups of a remote Parquet file spanning more than this are read chunk by chunk instead."""


# ---------------------------------------------------------------------- path templates
_INT_SPEC = re.compile(r"(?P<zero>0?)(?P<width>[0-9]{0,3})d?")


@dataclass(frozen=True)
class PathTemplate:
    """An info.json path template (`data_path`, `video_path`), checked once and compiled.

    Only the documented fields are accepted (`chunk_index`, `file_index`, and `video_key` for
    video_path), integers with a bounded width (`03d`), no attribute or index access and no
    conversions: `str.format` on the raw text would evaluate `{chunk_index.__class__}`, and a
    width of 200,000,000 would exhaust memory. `format` is the same template rebuilt from the
    checked parts, so formatting costs what `str.format` costs."""

    key: str
    text: str
    format: str

    @classmethod
    def compile(cls, key: str, text: Any, fields: tuple[str, ...], *, shown: str) -> PathTemplate:
        def refuse(why: str) -> DatasetFormatError:
            return DatasetFormatError(
                f"{shown}: {key} {text!r} {why}; LeRobot writes e.g. "
                f"{_DEFAULT_TEMPLATES.get(key, '')!r} (fields: {', '.join('{' + f + '}' for f in fields)})"
            )

        if not isinstance(text, str) or not text:
            raise refuse("is not a non-empty string")
        if text.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", text) or "://" in text:
            raise refuse("is absolute; templates are relative to the dataset root")
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise refuse(f"is not a valid template ({exc})") from None
        rebuilt = []
        for literal, name, spec, conversion in parts:
            rebuilt.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is None:
                continue
            if name not in fields:
                raise refuse(f"has the field {{{name}}}, which is not one of its documented fields")
            if conversion is not None:
                raise refuse(f"converts {{{name}!{conversion}}}; conversions are not allowed")
            if name == "video_key":
                if spec:
                    raise refuse(f"formats {{video_key}} with {spec!r}; use it bare")
            else:
                match = _INT_SPEC.fullmatch(spec or "")
                if match is None or int(match["width"] or 0) > MAX_TEMPLATE_WIDTH:
                    raise refuse(f"formats {{{name}}} with {spec!r}; use an integer format such as '03d' "
                                 f"(width at most {MAX_TEMPLATE_WIDTH})")
            rebuilt.append("{" + name + (":" + spec if spec else "") + "}")
        template = cls(key, text, "".join(rebuilt))
        sample = template(chunk_index=0, file_index=0, video_key="camera")
        problem = escape_problem(sample.replace("\\", "/").lstrip("/"))
        if problem:
            raise refuse(f"leaves the dataset root ({problem})")
        return template

    def __call__(self, *, chunk_index: int, file_index: int, video_key: str = "") -> str:
        return self.format.format(chunk_index=chunk_index, file_index=file_index, video_key=video_key)


_DEFAULT_TEMPLATES = {
    "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
}
_TEMPLATE_FIELDS = {"data_path": ("chunk_index", "file_index"),
                    "video_path": ("video_key", "chunk_index", "file_index")}


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
    templates: dict[str, PathTemplate] = field(default_factory=dict, repr=False)

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
        """Read info.json, the episodes table (without its stats columns) and the tasks table.

        The root is resolved by `open_root` (the one opener); info.json is size- and type-checked
        and its path templates compiled here, so a bad template fails at open, naming itself."""
        fs, root_path = open_root(root)
        with _attributed(join(root_path, "meta/info.json"), "restore meta/info.json from the dataset's source"):
            info = read_info(fs, root_path)
        features = {
            name: Feature(
                name=name,
                dtype=spec["dtype"],
                shape=tuple(spec["shape"]),
                names=spec.get("names"),
                info=dict(spec.get("info") or {}),
            )
            for name, spec in info["features"].items()
        }
        templates = compile_templates(info, join(root_path, "meta/info.json"),
                                      [name for name, feat in features.items() if feat.is_video])
        with _attributed(join(root_path, "meta/episodes"), "download the file named above again; it is "
                         "missing, truncated or corrupt"):
            episode_files = find_episode_files(fs, root_path, info)
            episodes = read_episodes(fs, root_path, episode_files, declared=int(info["total_episodes"]))
        with _attributed(join(root_path, "meta/tasks.parquet"), "download meta/tasks.parquet again"):
            tasks, task_indices = read_tasks(fs, root_path, declared=int(info.get("total_tasks") or 0))
        return cls(str(root), fs, root_path, info, features, episodes, tasks, episode_files, task_indices,
                   templates=templates)

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
        """Path of a dataset-relative file inside the filesystem, through the guarded join: a path
        from the metadata (templates, camera names, the byte index) that would leave the root is a
        DatasetFormatError."""
        try:
            return join(self.root_path, relative)
        except OptionError as exc:
            raise DatasetFormatError(
                f"{self.root}: {exc}. The path comes from the dataset's own metadata (meta/info.json "
                "templates and feature names, meta/byte_index); fix them or get the dataset from its source"
            ) from None

    def url(self, relative: str) -> str:
        """Human-readable location of a file, for error messages (the same guarded join)."""
        try:
            return join(str(self.root).rstrip("/") or str(self.root), relative)
        except OptionError as exc:
            raise DatasetFormatError(f"{self.root}: {exc}") from None

    def template(self, key: str) -> PathTemplate:
        """The compiled `data_path` or `video_path` template (checked when the dataset was opened)."""
        compiled = self.templates.get(key)
        if compiled is None:
            text = self.info.get(key)
            if not text and key == "video_path":
                raise DatasetFormatError(
                    f"{self.url('meta/info.json')}: video_path is null but the dataset has video features "
                    f"({', '.join(self.video_keys) or 'none'})"
                )
            compiled = self.templates[key] = PathTemplate.compile(
                key, text, _TEMPLATE_FIELDS[key], shown=self.url("meta/info.json"))
        return compiled

    def data_file(self, episode: int) -> str:
        """Relative path of the data Parquet file that holds an episode's rows."""
        chunk = int(self.episodes.column("data/chunk_index")[episode].as_py())
        file = int(self.episodes.column("data/file_index")[episode].as_py())
        return self.template("data_path")(chunk_index=chunk, file_index=file)

    def video_file(self, episode: int, camera: str) -> str:
        """Relative path of the MP4 that holds an episode's frames for one camera."""
        template = self.template("video_path")
        chunk = int(self.episodes.column(f"videos/{camera}/chunk_index")[episode].as_py())
        file = int(self.episodes.column(f"videos/{camera}/file_index")[episode].as_py())
        return template(video_key=camera, chunk_index=chunk, file_index=file)

    def video_span_s(self, episode: int, camera: str) -> tuple[float, float]:
        """(from_timestamp, to_timestamp) of an episode inside its MP4, in seconds."""
        start = float(self.episodes.column(f"videos/{camera}/from_timestamp")[episode].as_py())
        stop = float(self.episodes.column(f"videos/{camera}/to_timestamp")[episode].as_py())
        return start, stop

    def data_files(self) -> list[str]:
        """Every data file the episodes table points at, in order, once each."""
        chunks = self.column("data/chunk_index")
        files = self.column("data/file_index")
        return _unique_paths(self.template("data_path"), chunks, files)

    def video_files(self, camera: str) -> list[str]:
        """Every MP4 of one camera the episodes table points at, in order, once each."""
        chunks = self.column(f"videos/{camera}/chunk_index")
        files = self.column(f"videos/{camera}/file_index")
        return _unique_paths(self.template("video_path"), chunks, files, video_key=camera)

    def episodes_in_data_file(self) -> dict[str, np.ndarray]:
        """Data file -> positions of the episodes it holds, in table order (computed once: loaders
        ask for it on every episode they admit)."""
        key = ("data", None)
        if key not in self._groups:
            self._groups[key] = _group_by_path(self.template("data_path"), self.column("data/chunk_index"),
                                               self.column("data/file_index"))
        return self._groups[key]

    def episodes_in_video_file(self, camera: str) -> dict[str, np.ndarray]:
        """MP4 of one camera -> positions of the episodes it holds, in table order (computed once)."""
        key = ("video", camera)
        if key not in self._groups:
            self._groups[key] = _group_by_path(
                self.template("video_path"), self.column(f"videos/{camera}/chunk_index"),
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
@contextlib.contextmanager
def _attributed(file: str, fix: str) -> Iterator[None]:
    """Errors raised while reading one meta file carry that file and a fix as fields (an error that
    names a more precise file, e.g. one episodes Parquet, keeps it)."""
    try:
        yield
    except DatasetFormatError as exc:
        if exc.file is None:
            exc.file = file
        if exc.fix is None:
            exc.fix = fix
        raise


def file_size(fs: fsspec.AbstractFileSystem, path: str) -> int:
    """Bytes in a file: the local size, or the remote size the shared RangeReader pins."""
    if isinstance(fs, LocalFileSystem):
        return os.path.getsize(path)
    return int(reader_for(fs).size(path))


def read_range(fs: fsspec.AbstractFileSystem, path: str, start: int, stop: int) -> bytes:
    """Bytes [start, stop) of a file, all of them (a short file raises FooterFormatError)."""
    if isinstance(fs, LocalFileSystem):
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(stop - start)
        if len(data) != stop - start:
            raise FooterFormatError(f"{path} ends before byte {stop}")
        return data
    return bytes(reader_for(fs).read(path, start, stop))


def footer_length(fs: fsspec.AbstractFileSystem, path: str, size: int) -> int:
    """The serialized footer length a Parquet file's tail declares (0 when the tail is no Parquet tail:
    pyarrow then reports the file as it would)."""
    if size < 12:
        return 0
    tail = read_range(fs, path, size - 8, size)
    return int.from_bytes(tail[:4], "little") if tail[4:] == b"PAR1" else 0


def _remote_source(fs: fsspec.AbstractFileSystem, path: str, held: tuple[int, int] | None = None) -> SparseFile:
    """A remote file for pyarrow: every read it makes is a range request of the shared RangeReader
    (retried, checked against the request, pinned to the file's version, counted); `held` is a
    range fetched up front (if inside the file and at most PREFETCH_ROW_GROUPS_MAX_BYTES, whatever
    a footer claims), served from memory."""
    reader = reader_for(fs)
    size = reader.size(path)
    segments = []
    if held is not None and 0 <= held[0] < held[1] <= min(size, held[0] + PREFETCH_ROW_GROUPS_MAX_BYTES):
        segments = [(held[0], bytes(reader.read(path, held[0], held[1])))]
    return SparseFile(size, segments, name=path, on_miss=lambda start, stop: reader.read(path, start, stop))


def _missing(exc: FetchError) -> bool:
    return exc.code == "not-found"


def read_json(fs: fsspec.AbstractFileSystem, path: str, shown: str, *, max_bytes: int = MAX_INFO_JSON_BYTES) -> Any:
    """A JSON file of at most `max_bytes` (read no further than that), parsed."""
    try:
        if isinstance(fs, LocalFileSystem):
            with fs.open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        else:
            reader = reader_for(fs)
            data = reader.read(path, 0, min(reader.size(path), max_bytes + 1))
    except FetchError as exc:
        if not _missing(exc):
            raise
        raise DatasetFormatError(f"{shown}: file not found; is this the root of a LeRobot dataset?") from None
    except FileNotFoundError:
        raise DatasetFormatError(f"{shown}: file not found; is this the root of a LeRobot dataset?") from None
    if len(data) > max_bytes:
        raise DatasetFormatError(
            f"{shown}: larger than {max_bytes >> 20} MiB; LeRobot's info.json is a few KB, so this is not one "
            "(restore the file from the source)"
        )
    try:
        return json.loads(data)
    except RecursionError:
        raise DatasetFormatError(f"{shown}: JSON nested too deeply to be LeRobot metadata; restore the file") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and ints past 4300 digits
        raise DatasetFormatError(f"{shown}: not valid JSON ({exc}); restore the file from the source") from exc


def read_info(fs: fsspec.AbstractFileSystem, root_path: str) -> dict[str, Any]:
    """info.json, checked for the keys every reader needs, their types and the v3 codebase version."""
    shown = join(root_path, "meta/info.json")
    info = read_json(fs, shown, shown)
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{shown}: expected a JSON object, got {type(info).__name__}")
    _check_depth(info, shown)
    version = info.get("codebase_version", "")
    if not isinstance(version, str):
        raise DatasetFormatError(f"{shown}: codebase_version must be a string such as 'v3.0', got {version!r}")
    if version.startswith("v2") or version.startswith("v1"):
        raise DatasetFormatError(
            f"{shown}: codebase_version {version!r} is a LeRobot {version[:2]}.x dataset; "
            f"lerobot_inspect reads v3.0 only: {V2_HINT}", file=shown, code="unsupported-version",
            fix="convert the dataset to v3.0 with LeRobot's converter")
    missing = [key for key in REQUIRED_INFO_KEYS if key not in info]
    if missing:
        raise DatasetFormatError(f"{shown}: missing {', '.join(missing)}; not a LeRobot v3 info.json")
    if version != CODEBASE_VERSION:
        raise DatasetFormatError(f"{shown}: codebase_version {version!r} is not supported; expected 'v3.0'",
                                 file=shown, code="unsupported-version", fix="convert the dataset to LeRobot v3.0")
    if not _is_int(info["fps"]) or not 0 < info["fps"] <= MAX_INT:
        raise DatasetFormatError(f"{shown}: fps must be a positive integer, got {info['fps']!r}")
    for key, required, low in (("total_episodes", True, 0), ("total_frames", True, 0), ("total_tasks", False, 0),
                               ("chunks_size", False, 1)):
        value = info.get(key)
        if value is None and not required:
            continue
        if not _is_int(value) or not low <= value <= MAX_INT:
            raise DatasetFormatError(
                f"{shown}: {key} must be an integer >= {low}, got {_short(value)}; LeRobot writes a count here")
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):
        value = info.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise DatasetFormatError(f"{shown}: {key} must be a number, got {_short(value)}")
    for key in ("robot_type", "video_path"):
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise DatasetFormatError(f"{shown}: {key} must be a string or null, got {_short(value)}")
    if not isinstance(info["features"], dict) or not info["features"]:
        raise DatasetFormatError(f"{shown}: features must be a non-empty object")
    for name, spec in info["features"].items():
        _check_feature(name, spec, shown)
    return info


def _check_feature(name: str, spec: Any, shown: str) -> None:
    where = f"{shown}: feature {name!r}"
    if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
        raise DatasetFormatError(f"{where} needs 'dtype' and 'shape'")
    if not isinstance(spec["dtype"], str) or not spec["dtype"]:
        raise DatasetFormatError(f"{where}: dtype must be a string such as 'float32' or 'video', "
                                 f"got {_short(spec['dtype'])}")
    shape = spec["shape"]
    if (not isinstance(shape, list) or len(shape) > MAX_SHAPE_DIMS
            or not all(_is_int(d) and 0 <= d <= MAX_INT for d in shape)):
        raise DatasetFormatError(f"{where}: shape must be a list of at most {MAX_SHAPE_DIMS} non-negative "
                                 f"integers such as [6] or [480, 640, 3], got {_short(shape)}")
    if spec.get("info") is not None and not isinstance(spec["info"], dict):
        raise DatasetFormatError(f"{where}: info must be an object or null, got {_short(spec['info'])}")
    if spec.get("names") is not None and not isinstance(spec["names"], list | dict):
        raise DatasetFormatError(f"{where}: names must be a list, an object or null, got {_short(spec['names'])}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_depth(value: Any, shown: str) -> None:
    """Refuse JSON nested deeper than MAX_INFO_DEPTH (iteratively: the check itself cannot recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_INFO_DEPTH:
                raise DatasetFormatError(
                    f"{shown}: values nested more than {MAX_INFO_DEPTH} levels deep; LeRobot's info.json nests "
                    "5 levels. Restore the file from the source")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))


def compile_templates(info: dict[str, Any], shown: str, video_keys: list[str]) -> dict[str, PathTemplate]:
    """data_path (and video_path when the dataset has cameras), compiled; every camera name is tried in
    video_path, since a camera named '../../x' would otherwise lead out of the root."""
    templates = {"data_path": PathTemplate.compile("data_path", info["data_path"], _TEMPLATE_FIELDS["data_path"],
                                                   shown=shown)}
    if info.get("video_path"):
        video = templates["video_path"] = PathTemplate.compile(
            "video_path", info["video_path"], _TEMPLATE_FIELDS["video_path"], shown=shown)
        for key in video_keys:
            problem = escape_problem(video(chunk_index=0, file_index=0, video_key=key).replace("\\", "/").lstrip("/"))
            if problem:
                raise DatasetFormatError(
                    f"{shown}: the video feature {key!r} would put its files outside the dataset root through "
                    f"video_path {info['video_path']!r} ({problem}); rename the feature (names must not contain "
                    "'/' or '..')"
                )
    return templates


def find_episode_files(fs: fsspec.AbstractFileSystem, root_path: str, info: dict[str, Any]) -> list[str]:
    """Relative paths of meta/episodes/chunk-XXX/file-XXX.parquet, in chunk/file order.

    Listing works on local disks and object stores. Plain HTTP cannot list, so there we walk the
    chunk/file numbers until the first missing file (writers never leave gaps). The walk is bounded:
    each file holds at least one episode, so it probes at most total_episodes + 1 names, and a file
    counts only if it starts with Parquet's magic bytes (a server answering 200 with an HTML page
    for every path would otherwise be probed without end)."""
    base = join(root_path, "meta/episodes")
    if not is_http(fs):
        try:
            found = sorted(fs.glob(join(base, "chunk-*/file-*.parquet")))
            if found:
                return [posixpath.relpath(path, root_path) if root_path else path for path in found]
        except (NotImplementedError, ValueError, OSError):
            pass
    declared = int(info.get("total_episodes") or 0)
    chunks_size = int(info.get("chunks_size") or 1000)
    relative: list[str] = []
    chunk, file = 0, 0
    stopped = ""
    while True:
        rel = f"meta/episodes/chunk-{chunk:03d}/file-{file:03d}.parquet"
        head = _file_head(fs, join(root_path, rel), join(root_path, rel))
        if head is None:
            break
        if head != PARQUET_MAGIC:
            stopped = (f" ({join(root_path, rel)} answered {_short(head)}..., which is not Parquet: a server that "
                       "answers missing files with a page instead of 404)")
            break
        relative.append(rel)
        if len(relative) > max(1, declared):
            raise DatasetFormatError(
                f"{base}: found more than {max(1, declared)} episode files by probing chunk/file numbers, but "
                f"info.json declares total_episodes={declared} and each file holds at least one episode; "
                "fix total_episodes, or serve the dataset from a store that can list files"
            )
        file += 1
        if file >= chunks_size:
            chunk, file = chunk + 1, 0
    if not relative:
        raise DatasetFormatError(
            f"{base}: no chunk-XXX/file-XXX.parquet found{stopped}; the episodes table is missing "
            "(a v2.x dataset keeps episodes.jsonl instead)"
        )
    return relative


PARQUET_MAGIC = b"PAR1"


def _file_head(fs: fsspec.AbstractFileSystem, path: str, shown: str) -> bytes | None:
    """The first 4 bytes of a file, or None when it does not exist."""
    try:
        with fs.open(path, "rb") as handle:
            return handle.read(len(PARQUET_MAGIC))
    except FileNotFoundError:
        return None
    except Exception as exc:  # each fsspec backend has its own errors (aiohttp's for HTTP)
        raise DatasetFormatError(f"{shown}: cannot read ({type(exc).__name__}: {exc})") from exc


def parquet_file(fs: fsspec.AbstractFileSystem, path: str, *,
                 metadata: pq.FileMetaData | None = None, **limits: int) -> pq.ParquetFile:
    """Open a Parquet file for footer and row-group reads.

    Local files go through Arrow's native reader. Handing Arrow a Python file object makes it hold
    Python buffers in its I/O threads, and with torch loaded the interpreter then aborts at exit
    now and then ("terminate called without an active exception", measured 5 in 12 runs). Remote
    files are read through the shared RangeReader (every read a checked, retried range request),
    without Arrow's pre-buffering; given `metadata`, the byte range of its row groups is fetched
    in one request first (Arrow would ask for each column chunk on its own: 10 round trips for
    one episode's rows).
    `limits` are Arrow's thrift_string_size_limit / thrift_container_size_limit for the footer."""
    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(path, metadata=metadata, **limits)
    held = _row_groups_range(metadata) if metadata is not None else None
    return pq.ParquetFile(_remote_source(fs, path, held), metadata=metadata, pre_buffer=False, **limits)


def _row_groups_range(metadata: pq.FileMetaData) -> tuple[int, int] | None:
    """[start, stop) of the bytes holding every column chunk of `metadata`'s row groups."""
    starts, stops = [], []
    for k in range(metadata.num_row_groups):
        group = metadata.row_group(k)
        for c in range(group.num_columns):
            chunk = group.column(c)
            first = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            starts.append(int(first))
            stops.append(int(first) + int(chunk.total_compressed_size))
    return (min(starts), max(stops)) if starts else None


@contextlib.contextmanager
def _parquet_errors(path: str, *, size_limit_hint: str | None = None) -> Iterator[None]:
    """pyarrow's and the transport's errors on one Parquet file as DatasetFormatErrors naming it
    (a network failure other than a missing file stays a FetchError)."""
    try:
        yield
    except FetchError as exc:
        if not _missing(exc):
            raise
        raise DatasetFormatError(f"{path}: file not found; the dataset is incomplete", file=path,
                                 fix="restore the missing file") from None
    except FileNotFoundError:
        raise DatasetFormatError(f"{path}: file not found; the dataset is incomplete", file=path,
                                 fix="restore the missing file") from None
    except (pa.ArrowException, OSError) as exc:
        if size_limit_hint is not None and "Exceeded size limit" in str(exc):
            raise DatasetFormatError(f"{path}: {size_limit_hint}", file=path,
                                     fix="restore the file or fix meta/info.json") from exc
        raise DatasetFormatError(
            f"{path}: unreadable Parquet ({exc}); the file is truncated or corrupt, restore it", file=path,
            fix="download the file named above again; it is truncated or corrupt") from exc


def read_parquet(fs: fsspec.AbstractFileSystem, path: str, *, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file, with pyarrow's errors turned into a DatasetFormatError naming the file."""
    with _parquet_errors(path):
        return parquet_file(fs, path).read(columns=columns)


def read_meta_parquet(fs: fsspec.AbstractFileSystem, path: str, *, declared: int,
                      columns: Any = None) -> pa.Table:
    """A meta table (episodes, tasks) with bounds on what its footer and columns may cost.

    The footer may list at most max(10,000, 2 x declared + 100) row groups or columns (`declared`
    is the row count info.json gives), checked by Arrow before it allocates them; row groups
    without rows are refused (100,000 of them cost GBs to describe); and the columns read may not
    inflate to more than 256 MiB at more than 1000x their stored size (a compression bomb).
    `columns` is a list of names or a function from the schema's names to that list."""
    limit = max(META_MIN_CONTAINER_LIMIT, 2 * max(0, declared) + 100)
    hint = (f"the footer lists more than {limit} row groups or columns (info.json declares {declared} rows); "
            "restore the file or fix info.json")

    def check_groups(num_row_groups: int, num_rows: int) -> None:
        if num_row_groups > max(1, num_rows):
            raise DatasetFormatError(
                f"{path}: {num_row_groups} row groups for {num_rows} rows; row groups without "
                "rows are not something LeRobot writes. Rewrite the table with one row group per few rows"
            )

    def check_inflation(stored: int, inflated: int) -> None:
        if inflated > META_MAX_UNCOMPRESSED_BYTES and inflated > META_MAX_COMPRESSION_RATIO * max(1, stored):
            raise DatasetFormatError(
                f"{path}: its columns inflate from {stored} stored bytes to {inflated} bytes; no LeRobot meta table "
                "does that (a compression bomb). Restore the file from the source"
            )

    def chunk_sizes(metadata: pq.FileMetaData, wanted: set[str]) -> tuple[int, int]:
        prefixes = tuple(f"{name}." for name in wanted)
        stored = inflated = 0
        for k in range(metadata.num_row_groups):
            group = metadata.row_group(k)
            for c in range(group.num_columns):
                chunk = group.column(c)
                if chunk.path_in_schema in wanted or chunk.path_in_schema.startswith(prefixes):
                    stored += chunk.total_compressed_size
                    inflated += chunk.total_uncompressed_size
        return stored, inflated

    def read() -> pa.Table:
        size = file_size(fs, path)
        if footer_length(fs, path, size) > META_COMPACT_FOOTER_BYTES:
            return read_in_slices(size)
        parquet = parquet_file(fs, path, thrift_string_size_limit=META_THRIFT_STRING_LIMIT,
                               thrift_container_size_limit=limit)
        metadata = parquet.metadata
        check_groups(metadata.num_row_groups, metadata.num_rows)
        names = columns(parquet.schema_arrow.names) if callable(columns) else columns
        check_inflation(*chunk_sizes(metadata, set(parquet.schema_arrow.names if names is None else names)))
        return parquet.read(columns=names)

    def read_in_slices(size: int) -> pa.Table:
        # pyarrow decodes a whole footer into ~8x its serialized size (150 MB for the meta/episodes of
        # 10,000 episodes with their stats columns) and the process keeps that memory: read the row
        # groups a slice at a time, each under a footer that lists only that slice (io.parquet_footer).
        footer = read_compact_footer(lambda start, stop: read_range(fs, path, start, stop), size, name=path)
        if footer.num_row_groups > limit:
            raise DatasetFormatError(f"{path}: {hint}", file=path, fix="restore the file or fix meta/info.json")
        check_groups(footer.num_row_groups, int(footer.row_counts.sum()))
        names = columns(list(footer.column_names)) if callable(columns) else columns
        wanted = set(footer.column_names if names is None else names)
        parts, stored, inflated = [], 0, 0
        for first in range(0, footer.num_row_groups, META_ROW_GROUPS_PER_SLICE):
            last = min(first + META_ROW_GROUPS_PER_SLICE, footer.num_row_groups)
            structs = read_range(fs, path, int(footer.spans[first, 0]), int(footer.spans[last - 1, 1]))
            small = row_groups_footer(footer, structs, last - first, int(footer.row_counts[first:last].sum()))
            more_stored, more_inflated = chunk_sizes(small, wanted)
            stored, inflated = stored + more_stored, inflated + more_inflated
            check_inflation(stored, inflated)
            parts.append(parquet_file(fs, path, metadata=small).read(columns=names))
        if parts:
            table = pa.concat_tables(parts)
            _return_freed_heap()
            return table
        empty = row_groups_footer(footer, b"", 0, 0).schema.to_arrow_schema().empty_table()
        return empty if names is None else empty.select(names)

    with _parquet_errors(path, size_limit_hint=hint):
        try:
            return read()
        except FooterFormatError as exc:
            raise DatasetFormatError(f"{path}: unreadable Parquet footer ({exc}); the file is truncated or corrupt, "
                                     "restore it", file=path, fix="download the file named above again") from exc


def _return_freed_heap() -> None:
    """Hand the heap a sliced read freed back to the OS (glibc only; elsewhere a no-op).

    Reading a 10,000-episode table 100 row groups at a time leaves freed, fragmented heap that
    glibc keeps and the decode threads (other malloc arenas) never reuse: measured, the process
    held 445 MB instead of 466 MB right after opening such a dataset."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def read_episodes(fs: fsspec.AbstractFileSystem, root_path: str, relative: list[str], *,
                  declared: int = 0) -> pa.Table:
    """The episodes table without its stats/* columns (as LeRobot's `load_episodes`)."""
    tables = [
        read_meta_parquet(fs, join(root_path, rel), declared=declared,
                          columns=lambda names: [name for name in names if not name.startswith("stats/")])
        for rel in relative
    ]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowInvalid as exc:
        raise DatasetFormatError(
            f"{join(root_path, 'meta/episodes')}: episode files disagree on their schema ({exc})"
        ) from exc


def read_tasks(fs: fsspec.AbstractFileSystem, root_path: str, *, declared: int = 0) -> tuple[list[str], list[int]]:
    """Task strings by row and the task_index each row claims.

    LeRobot looks a task up by row position, so a table whose rows are not in task_index order
    gives wrong task strings; callers compare the two."""
    path = join(root_path, "meta/tasks.parquet")
    table = read_meta_parquet(fs, path, declared=declared)
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


def _unique_paths(template: PathTemplate, chunks: np.ndarray, files: np.ndarray, **fmt: str) -> list[str]:
    return list(_group_by_path(template, chunks, files, **fmt))


def _group_by_path(template: PathTemplate, chunks: np.ndarray, files: np.ndarray,
                   **fmt: str) -> dict[str, np.ndarray]:
    """Path -> positions of the episodes in it. Formats each distinct (chunk, file) pair once."""
    groups: dict[tuple[int, int], list[int]] = {}
    for position, pair in enumerate(zip(chunks.tolist(), files.tolist(), strict=True)):
        groups.setdefault(pair, []).append(position)
    by_path: dict[str, list[int]] = {}
    for (chunk, file), positions in groups.items():
        by_path.setdefault(template(chunk_index=int(chunk), file_index=int(file), **fmt), []).extend(positions)
    return {path: np.asarray(sorted(positions) if len(groups) != len(by_path) else positions, dtype=np.int64)
            for path, positions in by_path.items()}

