"""Find, check, build and save a dataset's byte index through its own filesystem.

The byte index lives next to the dataset (`meta/byte_index/`), so a remote root carries it to every
reader. When it is missing, readers build it in memory on first use from meta/episodes (a few
header reads per video file, never a scan of the frames), so remote video works without a
preparation step; `lerobot-inspect index build ROOT` saves it once for everyone.

A saved index that no longer matches the files (a re-encoded or re-uploaded MP4 changes its size)
is refused with IndexStaleError rather than fed to the decoder, which would otherwise fetch the
wrong bytes and fail far from the cause.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import IndexStaleError, OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io.fs import for_this_process
from lerobot_inspect.io.ranges import RangeReader
from lerobot_inspect.video.byte_index import (
    BYTE_INDEX_DIR,
    ByteIndex,
    VideoFileRef,
    build_byte_index,
    private_dir,
)

__all__ = [
    "DEFAULT_PROBE_BYTES",
    "build_dataset_index",
    "file_version",
    "index_exists",
    "load_index",
    "load_or_build_index",
    "resume_dir_for",
    "save_index",
    "video_file_refs",
]

# One read holds ftyp+moov of a faststart file of up to ~5000 frames (moov costs ~10 bytes a frame);
# a bigger moov costs one more read. A bigger probe would, on small files, fetch most of the frames
# just to build the index.
DEFAULT_PROBE_BYTES = 64 << 10
_TABLES = ("files", "episodes", "frames")

Progress = Callable[[int, int, str], None]


def _rebuild_hint(meta: DatasetMeta) -> str:
    return f"`lerobot-inspect index build {meta.root}`"


def video_file_refs(meta: DatasetMeta) -> list[VideoFileRef]:
    """One VideoFileRef per (camera, MP4) with the episodes and timestamps meta/episodes assigns it."""
    episode_index = meta.episode_index
    refs = []
    for camera in meta.video_keys:
        for rel, positions in meta.episodes_in_video_file(camera).items():
            episodes = [(int(episode_index[p]), *meta.video_span_s(int(p), camera)) for p in positions.tolist()]
            refs.append(VideoFileRef(camera=camera, path=rel, episodes=episodes))
    return refs


def index_exists(meta: DatasetMeta) -> bool:
    """True when meta/byte_index/ holds all three tables."""
    fs = for_this_process(meta.fs)  # an HTTP/s3 filesystem made before a DataLoader fork is unusable here
    return all(fs.exists(meta.path(f"{BYTE_INDEX_DIR}/{label}.parquet")) for label in _TABLES)


def load_index(meta: DatasetMeta) -> ByteIndex:
    """Read meta/byte_index/ through the dataset's filesystem (local, HTTP, s3, memory, ...)."""
    directory = meta.path(BYTE_INDEX_DIR)
    fs = for_this_process(meta.fs)
    if isinstance(fs, LocalFileSystem):
        return ByteIndex.load(directory)
    # pyarrow's own path resolution does not understand every fsspec URL (http://...): fetch the
    # three small tables into a temporary directory and load them there.
    with tempfile.TemporaryDirectory(prefix="lerobot_inspect_index_") as tmp:
        for label in _TABLES:
            source = f"{directory}/{label}.parquet"
            try:
                with fs.open(source, "rb") as handle:
                    Path(tmp, f"{label}.parquet").write_bytes(handle.read())
            except (OSError, ValueError) as exc:
                raise IndexStaleError(
                    f"{meta.url(f'{BYTE_INDEX_DIR}/{label}.parquet')}: cannot read the byte index ({exc}). "
                    f"Run {_rebuild_hint(meta)}"
                ) from exc
        return ByteIndex.load(tmp)


def check_index_fresh(meta: DatasetMeta, index: ByteIndex, reader: RangeReader) -> None:
    """Compare every video file's size now with the size the index was built for."""
    sizes = {rel: reader.size(meta.path(rel)) for camera in meta.video_keys for rel in meta.video_files(camera)}
    try:
        index.check_fresh(sizes)
    except IndexStaleError as exc:
        raise IndexStaleError(f"{meta.url(BYTE_INDEX_DIR)}: {_with_root(str(exc), meta)}") from exc
    missing = [(int(e), c) for c in meta.video_keys for e in meta.episode_index.tolist() if (int(e), c) not in index]
    if missing:
        episode, camera = missing[0]
        raise IndexStaleError(
            f"{meta.url(BYTE_INDEX_DIR)}: no entry for episode {episode}, camera {camera!r} "
            f"({len(missing)} (episode, camera) pairs missing; episodes were added after the index was "
            f"built). Run {_rebuild_hint(meta)}"
        )


def _with_root(message: str, meta: DatasetMeta) -> str:
    return message.replace("`lerobot-inspect index build ROOT`", _rebuild_hint(meta))


def build_dataset_index(
    meta: DatasetMeta,
    reader: RangeReader,
    *,
    threads: int = 8,
    progress: Progress | None = None,
    resume_dir: str | os.PathLike | None = None,
    probe_bytes: int = DEFAULT_PROBE_BYTES,
) -> ByteIndex:
    """Parse every MP4 header of the dataset through `reader` (range reads with retries).

    With `resume_dir`, partial results are checked against each file's version tag (ETag,
    Last-Modified or mtime, from the filesystem's info) before they are reused."""
    index = build_byte_index(
        video_file_refs(meta),
        lambda rel, start, stop: reader.read(meta.path(rel), start, stop),
        lambda rel: reader.size(meta.path(rel)),
        threads=threads,
        progress=progress,
        resume_dir=resume_dir,
        probe_bytes=probe_bytes,
        file_version=(lambda rel: file_version(meta, rel)) if resume_dir is not None else None,
    )
    # Record the identity each file had (the reader pinned it with the size): a reader compares it
    # with the file it finds, so a re-upload of the same size is noticed too.
    files = index.files
    versions = pa.array([reader.identity(meta.path(rel)).version for rel in files.column("path").to_pylist()],
                        type=pa.string())
    return ByteIndex(files.set_column(files.column_names.index("etag"), "etag", versions), index.episodes,
                     index.frames)


_VERSION_KEYS = ("ETag", "etag", "Last-Modified", "LastModified", "last_modified", "mtime")


def file_version(meta: DatasetMeta, rel: str) -> str | None:
    """A tag that changes when the file is replaced (ETag, Last-Modified, mtime), or None."""
    try:
        info: dict[str, Any] = for_this_process(meta.fs).info(meta.path(rel))
    except Exception:  # no version is not an error: the caller then compares content instead
        return None
    for key in _VERSION_KEYS:
        if info.get(key) not in (None, ""):
            tag = f"{key}={info[key]}"
            return f"{tag};ino={info['ino']}" if key == "mtime" and info.get("ino") else tag
    return None


def load_or_build_index(
    meta: DatasetMeta,
    reader: RangeReader | None = None,
    *,
    progress: Progress | None = None,
    verify_sizes: bool = True,
    threads: int = 8,
    probe_bytes: int = DEFAULT_PROBE_BYTES,
) -> ByteIndex:
    """The saved index when present (checked against the files' sizes), else one built in memory.

    `verify_sizes=False` skips the one size request per video file at load; the episode source
    then checks each file when it first touches it, so only the files a loader reads cost a
    request."""
    if not meta.video_keys:
        raise OptionError(f"{meta.root} has no video features; a byte index indexes MP4s only")
    reader = reader or RangeReader(for_this_process(meta.fs))
    if index_exists(meta):
        index = load_index(meta)
        if verify_sizes:
            check_index_fresh(meta, index, reader)
        return index
    return build_dataset_index(meta, reader, threads=threads, progress=progress, probe_bytes=probe_bytes)


def resume_dir_for(meta: DatasetMeta) -> Path:
    """Local scratch directory where an interrupted `index build` keeps its finished files.

    It lies in a per-user directory under the system temp dir that is created 0700 and checked
    (a directory, owned by this user, closed to group and others) before use; when that check
    fails (someone else made it first), a fresh unpredictable directory is used instead and the
    build does not resume. Each partial result is verified by content before reuse as well."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"lerobot_inspect_index_resume-{uid}"
    key = hashlib.sha256(str(meta.root).rstrip("/").encode()).hexdigest()[:32]
    try:
        return private_dir(base) / key
    except (OptionError, OSError) as exc:
        fresh = Path(tempfile.mkdtemp(prefix="lerobot_inspect_index_resume-"))
        warnings.warn(f"{exc}; keeping this build's partial results in {fresh} instead (no resume)", stacklevel=2)
        return fresh / key


def save_index(meta: DatasetMeta, index: ByteIndex, *, out: str | None = None) -> str:
    """Write the three tables to `out` (default ROOT/meta/byte_index) through fsspec; return where.

    Local targets are written atomically by ByteIndex.save; remote ones are written to a local
    temporary directory first and then uploaded table by table."""
    if out is None:
        fs, directory, shown = meta.fs, meta.path(BYTE_INDEX_DIR), meta.url(BYTE_INDEX_DIR)
    else:
        from lerobot_inspect.io.fs import open_root

        fs, directory = open_root(out)
        shown = out
    if isinstance(fs, LocalFileSystem):
        index.save(directory)
        return shown
    with tempfile.TemporaryDirectory(prefix="lerobot_inspect_index_") as tmp:
        index.save(tmp)
        try:
            fs.makedirs(directory, exist_ok=True)
            for label in _TABLES:
                fs.put_file(os.path.join(tmp, f"{label}.parquet"), posixpath.join(directory, f"{label}.parquet"))
        except Exception as exc:  # each fsspec backend has its own error types (aiohttp's for HTTP)
            raise OptionError(
                f"cannot write the byte index to {shown} ({type(exc).__name__}: {exc}); this filesystem is "
                "read-only (plain HTTP is). Pass --out DIR to write it elsewhere, then upload DIR as "
                "meta/byte_index/ next to the dataset"
            ) from exc
    return shown
