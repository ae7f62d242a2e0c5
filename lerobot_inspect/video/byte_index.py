"""Episode byte index: where every (episode, camera) lives inside its MP4, saved as three Parquet tables.

Opening a remote MP4 to decode one episode should cost the header plus that episode's bytes, not a
scan of a 200 MB file. The index records, per video file, its sample table (pts, keyframes, byte
offsets) and, per (episode, camera), the byte span in mdat that decodes the episode's frames. It is
built once by parsing each file's moov (a few reads per file; the I/O is injected so the same code
runs over local files, HTTP or object stores) and saved next to the dataset:

    meta/byte_index/files.parquet     one row per video file (size, codec, header byte ranges)
    meta/byte_index/episodes.parquet  one row per (episode, camera): file row, byte span, samples
    meta/byte_index/frames.parquet    one row per sample per file, in decode order

Loading reads three small Parquet files and builds a dict, so lookups are O(1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lerobot_inspect.errors import (
    DatasetFormatError,
    FetchError,
    IndexStaleError,
    LeRobotInspectError,
    OptionError,
)
from lerobot_inspect.video.mp4 import VideoTrack, episode_span, frame_mappings_json, read_mp4_header

__all__ = [
    "BYTE_INDEX_DIR",
    "BYTE_INDEX_FORMAT",
    "ByteIndex",
    "EpisodeBytes",
    "VideoFileRef",
    "build_byte_index",
]

BYTE_INDEX_FORMAT = 1
BYTE_INDEX_DIR = "meta/byte_index"
_FORMAT_KEY = b"lerobot_inspect.byte_index.format"
_TABLES = ("files", "episodes", "frames")

FILES_SCHEMA = pa.schema(
    [
        ("file_id", pa.int32()),
        ("path", pa.string()),
        ("camera", pa.string()),
        ("size_bytes", pa.int64()),
        ("etag", pa.string()),
        ("codec", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("timescale", pa.int64()),
        ("n_samples", pa.int64()),
        ("frames_start", pa.int64()),  # this file's rows in frames.parquet: [frames_start, frames_stop)
        ("frames_stop", pa.int64()),
        ("moov_start", pa.int64()),
        ("moov_stop", pa.int64()),
        ("header_starts", pa.list_(pa.int64())),
        ("header_stops", pa.list_(pa.int64())),
    ]
)
EPISODES_SCHEMA = pa.schema(
    [
        ("episode_index", pa.int64()),
        ("camera", pa.string()),
        ("file_id", pa.int32()),
        ("from_timestamp", pa.float64()),
        ("to_timestamp", pa.float64()),
        ("first_sample", pa.int64()),  # decode index of the keyframe the span starts with
        ("n_samples", pa.int64()),  # samples fed to the decoder, lookahead included
        ("n_frames", pa.int64()),  # frames whose pts fall in [from_timestamp, to_timestamp)
        ("span_start", pa.int64()),
        ("span_stop", pa.int64()),
        ("floor_bytes", pa.int64()),
    ]
)
FRAMES_SCHEMA = pa.schema(
    [
        ("file_id", pa.int32()),
        ("sample", pa.int32()),  # decode index within the file
        ("pts", pa.int64()),
        ("dts", pa.int64()),
        ("duration", pa.int64()),
        ("keyframe", pa.bool_()),
        ("offset", pa.int64()),
        ("size", pa.int64()),
    ]
)
_SCHEMAS = {"files": FILES_SCHEMA, "episodes": EPISODES_SCHEMA, "frames": FRAMES_SCHEMA}

ReadFileRange = Callable[[str, int, int], bytes]
FileSize = Callable[[str], int]
FileVersion = Callable[[str], "str | None"]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class VideoFileRef:
    """One MP4 to index and the episodes meta/episodes says it holds.

    `episodes` is a sequence of (episode_index, from_timestamp, to_timestamp) in seconds, as in the
    `videos/{camera}/from_timestamp` / `to_timestamp` columns. `etag` is any version tag the caller
    has (HTTP ETag, mtime); it is stored for freshness checks."""

    camera: str
    path: str
    episodes: Sequence[tuple[int, float, float]]
    etag: str | None = None


@dataclass(frozen=True)
class EpisodeBytes:
    """Everything a sparse reader and decoder need for one (episode, camera)."""

    episode_index: int
    camera: str
    path: str
    size_bytes: int
    from_timestamp: float
    to_timestamp: float
    span_start: int
    span_stop: int
    floor_bytes: int
    first_sample: int
    n_samples: int
    n_frames: int
    header_ranges: tuple[tuple[int, int], ...]

    @property
    def byte_ranges(self) -> tuple[tuple[int, int], ...]:
        """Header ranges plus the episode span: all a decoder reads to decode this episode."""
        return (*self.header_ranges, (self.span_start, self.span_stop))


class ByteIndex:
    """The three tables plus an (episode, camera) -> row dict built at construction."""

    def __init__(self, files: pa.Table, episodes: pa.Table, frames: pa.Table) -> None:
        for label, table in (("files", files), ("episodes", episodes), ("frames", frames)):
            missing = set(_SCHEMAS[label].names) - set(table.column_names)
            if missing:
                raise IndexStaleError(
                    f"byte index table {label} lacks columns {sorted(missing)}; it was written by another "
                    "version. Run `lerobot-inspect index build ROOT`"
                )
        self.files = files
        self.episodes = episodes
        self.frames = frames
        self._paths: list[str] = files.column("path").to_pylist()
        self._file_row = {path: row for row, path in enumerate(self._paths)}
        self._sizes = files.column("size_bytes").to_numpy()
        self._frames_start = files.column("frames_start").to_numpy()
        self._frames_stop = files.column("frames_stop").to_numpy()
        self._header = list(
            zip(files.column("header_starts").to_pylist(), files.column("header_stops").to_pylist(), strict=True)
        )
        self._ep = {name: episodes.column(name).to_numpy() for name in EPISODES_SCHEMA.names if name != "camera"}
        cameras = episodes.column("camera").to_pylist()
        self._row = {
            (int(ep), cam): row for row, (ep, cam) in enumerate(zip(self._ep["episode_index"], cameras, strict=True))
        }
        self._cameras = cameras
        self._mappings: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple:
        # Spawned DataLoader workers get the three tables and rebuild the lookups (and the lock).
        return (ByteIndex, (self.files, self.episodes, self.frames))

    # -- lookups ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.episodes.num_rows

    def __contains__(self, key: tuple[int, str]) -> bool:
        return key in self._row

    @property
    def cameras(self) -> list[str]:
        return sorted(set(self._cameras))

    def episode(self, episode_index: int, camera: str) -> EpisodeBytes:
        """The byte span and file of one (episode, camera); O(1)."""
        row = self._row.get((int(episode_index), camera))
        if row is None:
            raise IndexStaleError(
                f"byte index has no entry for episode {episode_index}, camera {camera!r} "
                f"(cameras: {', '.join(self.cameras)}). Run `lerobot-inspect index build ROOT`"
            )
        ep = self._ep
        file_id = int(ep["file_id"][row])
        starts, stops = self._header[file_id]
        return EpisodeBytes(
            episode_index=int(episode_index),
            camera=camera,
            path=self._paths[file_id],
            size_bytes=int(self._sizes[file_id]),
            from_timestamp=float(ep["from_timestamp"][row]),
            to_timestamp=float(ep["to_timestamp"][row]),
            span_start=int(ep["span_start"][row]),
            span_stop=int(ep["span_stop"][row]),
            floor_bytes=int(ep["floor_bytes"][row]),
            first_sample=int(ep["first_sample"][row]),
            n_samples=int(ep["n_samples"][row]),
            n_frames=int(ep["n_frames"][row]),
            header_ranges=tuple(zip(starts, stops, strict=True)),
        )

    def file_frames(self, path: str) -> dict[str, np.ndarray]:
        """A file's sample table (decode order) as numpy arrays keyed like frames.parquet."""
        row = self._file_row.get(path)
        if row is None:
            raise IndexStaleError(f"byte index has no file {path!r}. Run `lerobot-inspect index build ROOT`")
        return self._frames_slice(int(self._frames_start[row]), int(self._frames_stop[row] - self._frames_start[row]))

    def episode_frames(self, entry: EpisodeBytes) -> dict[str, np.ndarray]:
        """The samples one (episode, camera) decoder is fed (decode order), without converting the
        whole file's table: at 10,000 episodes per file that conversion was half of a decoder open."""
        row = self._file_row.get(entry.path)
        if row is None:
            raise IndexStaleError(f"byte index has no file {entry.path!r}. Run `lerobot-inspect index build ROOT`")
        return self._frames_slice(int(self._frames_start[row]) + entry.first_sample, entry.n_samples)

    def _frames_slice(self, start: int, length: int) -> dict[str, np.ndarray]:
        part = self.frames.slice(start, length)
        return {name: part.column(name).to_numpy() for name in FRAMES_SCHEMA.names if name != "file_id"}

    def frame_mappings(self, path: str) -> bytes:
        """TorchCodec `custom_frame_mappings` JSON for one file, built once and cached."""
        cached = self._mappings.get(path)
        if cached is None:
            frames = self.file_frames(path)
            cached = frame_mappings_json(frames["pts"], frames["duration"], frames["keyframe"])
            with self._lock:
                self._mappings[path] = cached
        return cached

    def episode_mappings(self, entry: EpisodeBytes) -> tuple[bytes, np.ndarray]:
        """(TorchCodec `custom_frame_mappings` JSON, seconds of each frame in pts order) of the samples
        one (episode, camera) decoder is fed: its decoder numbers only the episode's frames, and
        opening it parses ~100 entries instead of the whole file's (10,000: ~25 ms per open)."""
        frames = self.episode_frames(entry)
        pts = frames["pts"]
        mappings = frame_mappings_json(pts, frames["duration"], frames["keyframe"])
        return mappings, np.sort(pts).astype(np.float64) / self.timescale(entry.path)

    def timescale(self, path: str) -> int:
        return int(self.files.column("timescale")[self._file_row[path]].as_py())

    def version_of(self, path: str) -> str | None:
        """The version tag (ETag, Last-Modified, mtime) the file had when it was indexed, if recorded."""
        row = self._file_row.get(path)
        return None if row is None else self.files.column("etag")[row].as_py()

    def check_fresh(self, sizes: Mapping[str, int]) -> None:
        """Refuse an index whose files changed size since it was built (re-encoded, re-uploaded)."""
        for path, size in sizes.items():
            row = self._file_row.get(path)
            if row is None:
                raise IndexStaleError(
                    f"{path}: not in the byte index (a new video file?). Run `lerobot-inspect index build ROOT`"
                )
            if int(self._sizes[row]) != int(size):
                raise IndexStaleError(
                    f"{path}: is {size} bytes but the byte index was built for {int(self._sizes[row])} bytes. "
                    "Run `lerobot-inspect index build ROOT`"
                )

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> None:
        """Write files/episodes/frames.parquet (atomically each) with the format in the schema metadata."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for label, table in (("files", self.files), ("episodes", self.episodes), ("frames", self.frames)):
            meta = dict(table.schema.metadata or {})
            meta[_FORMAT_KEY] = str(BYTE_INDEX_FORMAT).encode()
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{label}.", suffix=".tmp")
            os.close(fd)
            try:
                pq.write_table(table.replace_schema_metadata(meta), tmp)
                os.replace(tmp, out / f"{label}.parquet")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, filesystem=None) -> ByteIndex:
        """Read a saved index; `filesystem` is an optional fsspec/pyarrow filesystem for remote roots."""
        tables = {}
        for label in _TABLES:
            path = f"{os.fspath(directory).rstrip('/')}/{label}.parquet"
            try:
                table = pq.read_table(path, filesystem=filesystem)
            except (OSError, pa.ArrowException) as exc:
                raise IndexStaleError(
                    f"{path}: cannot read the byte index ({exc}). Run `lerobot-inspect index build ROOT`"
                ) from exc
            version = (table.schema.metadata or {}).get(_FORMAT_KEY)
            if version != str(BYTE_INDEX_FORMAT).encode():
                raise IndexStaleError(
                    f"{path}: byte index format {version!r}, this version reads {BYTE_INDEX_FORMAT}. "
                    "Run `lerobot-inspect index build ROOT`"
                )
            tables[label] = table
        return cls(tables["files"], tables["episodes"], tables["frames"])


# --------------------------------------------------------------------------------------------
# Building.


@dataclass
class _FileResult:
    file_row: dict
    episode_rows: list[dict]
    frames: dict[str, np.ndarray]
    moov_sha256: str = ""


def _episode_rows(ref: VideoFileRef, track: VideoTrack) -> list[dict]:
    """One row per episode of `ref`: its samples and byte span in the file, from the sample table."""
    rows = []
    for episode_index, from_ts, to_ts in ref.episodes:
        try:
            span = episode_span(track, from_timestamp=from_ts, to_timestamp=to_ts, name=ref.path)
        except DatasetFormatError as exc:
            raise DatasetFormatError(f"episode {episode_index}, camera {ref.camera!r}: {exc}") from exc
        rows.append(
            {
                "episode_index": int(episode_index),
                "camera": ref.camera,
                "from_timestamp": float(from_ts),
                "to_timestamp": float(to_ts),
                "first_sample": span.first_sample,
                "n_samples": span.n_samples,
                "n_frames": span.n_frames,
                "span_start": span.span_start,
                "span_stop": span.span_stop,
                "floor_bytes": span.floor_bytes,
            }
        )
    return rows


def _index_one_file(
    ref: VideoFileRef, read_range: ReadFileRange, file_size: FileSize, probe_bytes: int
) -> _FileResult:
    size = int(file_size(ref.path))
    segments, info = read_mp4_header(
        lambda start, stop: read_range(ref.path, start, stop), size, name=ref.path, probe_bytes=probe_bytes
    )
    track = info.video
    episode_rows = _episode_rows(ref, track)
    moov_start, moov_stop = info.moov_range
    moov = next((data for start, data in segments if start == moov_start), b"")
    file_row = {
        "path": ref.path,
        "camera": ref.camera,
        "size_bytes": size,
        "etag": ref.etag,
        "codec": track.codec,
        "width": track.width,
        "height": track.height,
        "timescale": track.timescale,
        "n_samples": track.n_samples,
        "moov_start": moov_start,
        "moov_stop": moov_stop,
        "header_starts": [start for start, _ in info.header_ranges],
        "header_stops": [stop for _, stop in info.header_ranges],
    }
    frames = {
        "pts": track.pts,
        "dts": track.dts,
        "duration": track.duration,
        "keyframe": track.keyframe,
        "offset": track.offset,
        "size": track.size,
    }
    return _FileResult(file_row, episode_rows, frames, hashlib.sha256(moov).hexdigest())


# --------------------------------------------------------------------------------------------
# Resuming an interrupted build. Finished files are kept in a private directory (0700, owned by
# this user, checked before use) and each one is verified by content before it is reused: its own
# digest, the identity of the MP4 it was parsed from (size plus ETag or mtime; without a version
# tag, a hash of the file's moov read again), and episode spans that must follow from its sample
# table. A partial that fails any check is parsed again, never copied into the index.

_PARTIAL_FRAMES = ("pts", "dts", "duration", "keyframe", "offset", "size")


def private_dir(path: str | os.PathLike) -> Path:
    """`path` created as a directory only this user can enter (0700), or refused with OptionError
    when it exists and is a symlink, belongs to someone else, or is open to group or others."""
    directory = Path(path)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = os.lstat(directory)
    owner = os.getuid() if hasattr(os, "getuid") else info.st_uid
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner or info.st_mode & 0o077:
        raise OptionError(
            f"{directory}: not a private directory (mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid}); "
            "partial results of an index build are kept only where no one else can write. Remove it or pass "
            "another resume directory"
        )
    return directory


def _partial_path(resume_dir: Path, ref: VideoFileRef) -> Path:
    key = hashlib.sha256(f"{ref.camera}\0{ref.path}\0{sorted(ref.episodes)!r}".encode()).hexdigest()[:32]
    return resume_dir / f"{key}.npz"


def _partial_digest(meta: dict, frames: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in _PARTIAL_FRAMES:
        array = np.ascontiguousarray(frames[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _save_partial(path: Path, result: _FileResult, identity: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz")
    os.close(fd)
    try:
        meta = {"file": result.file_row, "episodes": result.episode_rows, "identity": identity,
                "moov_sha256": result.moov_sha256}
        meta["digest"] = _partial_digest(meta, result.frames)
        np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **result.frames)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_partial(path: Path, ref: VideoFileRef, identity: dict, read_range: ReadFileRange) -> _FileResult | None:
    """A previous run's result for this file when it passes every check, else None (parse again)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes())
            frames = {name: npz[name] for name in _PARTIAL_FRAMES}
        digest = meta.pop("digest")
        if not isinstance(digest, str) or digest != _partial_digest(meta, frames):
            return None
        row = meta["file"]
        if meta["identity"] != identity or (row["path"], row["camera"]) != (ref.path, ref.camera):
            return None
        size, n = int(identity["size"]), int(row["n_samples"])
        if row["size_bytes"] != size or any(frames[name].shape != (n,) for name in _PARTIAL_FRAMES):
            return None
        if n and (int(frames["offset"].min()) < 0 or int((frames["offset"] + frames["size"]).max()) > size):
            return None
        if identity.get("version") is None:
            # No version tag to tell a replaced file of the same size: compare the moov itself.
            start, stop = int(row["moov_start"]), int(row["moov_stop"])
            if not 0 <= start < stop <= size:
                return None
            if hashlib.sha256(read_range(ref.path, start, stop)).hexdigest() != meta["moov_sha256"]:
                return None
        track = VideoTrack(track_id=0, timescale=int(row["timescale"]), codec=str(row["codec"]),
                           width=int(row["width"]), height=int(row["height"]), **frames)
        if _episode_rows(ref, track) != meta["episodes"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LeRobotInspectError):
        return None
    return _FileResult(row, meta["episodes"], frames, meta["moov_sha256"])


def _assemble(results: list[_FileResult]) -> ByteIndex:
    file_rows, episode_rows, frame_parts = [], [], []
    frames_start = 0
    for file_id, result in enumerate(results):
        n = int(result.frames["pts"].shape[0])
        file_rows.append(
            {**result.file_row, "file_id": file_id, "frames_start": frames_start, "frames_stop": frames_start + n}
        )
        frames_start += n
        episode_rows.extend({**row, "file_id": file_id} for row in result.episode_rows)
        frame_parts.append(
            pa.table(
                {
                    "file_id": pa.array(np.full(n, file_id, dtype=np.int32)),
                    "sample": pa.array(np.arange(n, dtype=np.int32)),
                    **{name: pa.array(result.frames[name]) for name in FRAMES_SCHEMA.names[2:]},
                },
                schema=FRAMES_SCHEMA,
            )
        )
    episode_rows.sort(key=lambda row: (row["episode_index"], row["camera"]))
    files = pa.Table.from_pylist(file_rows, schema=FILES_SCHEMA)
    episodes = pa.Table.from_pylist(episode_rows, schema=EPISODES_SCHEMA)
    frames = pa.concat_tables(frame_parts) if frame_parts else FRAMES_SCHEMA.empty_table()
    return ByteIndex(files, episodes, frames)


def build_byte_index(
    files: Sequence[VideoFileRef],
    read_range: ReadFileRange,
    file_size: FileSize,
    *,
    threads: int = 8,
    progress: Progress | None = None,
    resume_dir: str | os.PathLike | None = None,
    probe_bytes: int = 2 << 20,
    file_version: FileVersion | None = None,
) -> ByteIndex:
    """Parse every file's header (threads in parallel) and compute each episode's byte span.

    `read_range(path, start, stop)` and `file_size(path)` do the I/O (local files, fsspec with
    retries, ...). With `resume_dir` (made private, or refused when it is not), each finished file
    is saved there, so a rerun after an interruption only parses what is missing; a saved file is
    reused only after it is verified by content against the MP4 as it is now (`file_version(path)`:
    an ETag or mtime; without one the moov is read again and compared). The directory is emptied
    once the build succeeds. `progress(done, total, path)` is called after each file."""
    if threads < 1:
        raise OptionError(f"threads={threads}; must be at least 1")
    seen: set[tuple[str, str]] = set()
    for ref in files:
        if (ref.camera, ref.path) in seen:
            raise OptionError(f"file {ref.path!r} of camera {ref.camera!r} listed twice; merge its episodes")
        seen.add((ref.camera, ref.path))
    resume = private_dir(resume_dir) if resume_dir is not None else None

    def work(ref: VideoFileRef) -> _FileResult:
        if resume is None:
            return _index_one_file(ref, read_range, file_size, probe_bytes)
        version = file_version(ref.path) if file_version is not None else None
        identity = {"size": int(file_size(ref.path)), "version": None if version is None else str(version)}
        partial = _partial_path(resume, ref)
        if partial.exists():
            previous = _load_partial(partial, ref, identity, read_range)
            if previous is not None:
                return previous
            partial.unlink(missing_ok=True)
        result = _index_one_file(ref, read_range, file_size, probe_bytes)
        _save_partial(partial, result, identity)
        return result

    results: list[_FileResult | None] = [None] * len(files)
    with ThreadPoolExecutor(max_workers=min(threads, max(1, len(files)))) as pool:
        futures = {pool.submit(work, ref): i for i, ref in enumerate(files)}
        done = 0
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except LeRobotInspectError:
                    raise
                except OSError as exc:
                    raise FetchError(f"{files[i].path}: reading the MP4 header failed: {exc}") from exc
                done += 1
                if progress is not None:
                    progress(done, len(files), files[i].path)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    index = _assemble([r for r in results if r is not None])
    if resume is not None:
        for ref in files:
            _partial_path(resume, ref).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            resume.rmdir()
    return index
