"""The reading side of the content checks: data Parquet columns, stored stats, MP4 sample entries.

`check_content(meta)` reads only the declared numeric feature columns of each data file (never the
image or string columns), the `stats/<feature>/{min,max,mean,std,count}` columns of meta/episodes
and meta/stats.json, and hands them to `format.content.ContentAudit`. `check_video_info(meta)` reads
each MP4's moov (box headers and moov only) and compares width, height, codec and pixel format with
info.json; the fps is compared by `validate`'s header check already.

Files that are missing or unreadable are skipped here: `validate` reports them once.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from lerobot_inspect.errors import LeRobotInspectError
from lerobot_inspect.format.content import COMPARED_STATS, ContentAudit, ContentThresholds
from lerobot_inspect.format.meta import DatasetMeta, parquet_file
from lerobot_inspect.format.validate import Finding

__all__ = ["check_content", "check_video_info", "read_episode_stats", "read_stats_json"]

HEADER_PROBE_BYTES = 256 << 10


def check_content(meta: DatasetMeta, *, thresholds: ContentThresholds | None = None) -> list[Finding]:
    """Every content check over every data file, then the dataset-wide ones."""
    audit = ContentAudit(meta.features, num_tasks=len(meta.tasks), num_episodes=meta.num_episodes,
                         info_file=meta.url("meta/info.json"), thresholds=thresholds or ContentThresholds())
    lengths = meta.lengths
    out: list[Finding] = []
    for rel, episodes in meta.episodes_in_data_file().items():
        try:
            parquet = parquet_file(meta.fs, meta.path(rel))
            if parquet.metadata.num_rows != int(lengths[episodes].sum()):
                continue  # data-rows-mismatch: rows cannot be told apart by episode
            columns = [name for name in audit.columns if name in parquet.schema_arrow.names]
            table = parquet.read(columns=columns)
        except (FileNotFoundError, pa.ArrowException, OSError):
            continue
        out.extend(audit.add_file(meta.url(rel), table, episodes.tolist(), lengths[episodes]))
    stats_json, problem = read_stats_json(meta)
    out.extend(audit.finish(episode_stats=read_episode_stats(meta, audit.stats_checked),
                            episodes_file=meta.url("meta/episodes"), stats_json=stats_json,
                            stats_problem=problem, stats_file=meta.url("meta/stats.json")))
    return out


def read_stats_json(meta: DatasetMeta) -> tuple[Any, str | None]:
    """(parsed stats.json, None) or (None, why it cannot be used)."""
    path = meta.path("meta/stats.json")
    try:
        with meta.fs.open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, "is missing"
    except OSError as exc:
        return None, f"cannot be read ({exc})"
    try:
        parsed = json.loads(raw)
        return (parsed, None) if parsed is not None else (None, "holds null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON ({exc})"


def read_episode_stats(meta: DatasetMeta, features: list[str]) -> dict[str, dict[str, np.ndarray]] | None:
    """feature -> stat -> (episodes, dims) float64 from the stats/* columns of meta/episodes, rows in
    table order (NaN where a row has no value); None when the files cannot be read."""
    wanted = [f"stats/{name}/{stat}" for name in features for stat in COMPARED_STATS]
    parts: dict[str, list[np.ndarray]] = {}
    for rel in meta.episode_files:
        try:
            parquet = parquet_file(meta.fs, meta.path(rel))
            columns = [c for c in wanted if c in parquet.schema_arrow.names]
            table = parquet.read(columns=columns)
        except (FileNotFoundError, pa.ArrowException, OSError):
            return None
        for column in columns:
            parts.setdefault(column, []).append(_rows_as_matrix(table.column(column)))
    out: dict[str, dict[str, np.ndarray]] = {}
    for column, arrays in parts.items():
        _, name, stat = column.split("/")  # feature names never contain "/"
        try:
            out.setdefault(name, {})[stat] = np.concatenate(arrays)
        except ValueError:
            continue  # files disagree on the width: leave this stat out
    return out


def _rows_as_matrix(column: pa.ChunkedArray) -> np.ndarray:
    rows = column.to_pylist()
    width = max((len(r) for r in rows if isinstance(r, list)), default=1)
    matrix = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        if isinstance(row, list) and len(row) == width:
            try:
                matrix[i] = np.asarray(row, dtype=np.float64).reshape(-1)[:width]
            except (TypeError, ValueError):
                continue
        elif row is not None and not isinstance(row, list):
            matrix[i, 0] = float(row)
    return matrix


# ---------------------------------------------------------------------- MP4 header vs info.json
def read_sample_entry(meta: DatasetMeta, rel: str) -> Any:
    """CodecInfo of one MP4, from box headers and moov only."""
    from lerobot_inspect.video.codec_info import moov_video_sample_entry, sample_entry_info
    from lerobot_inspect.video.mp4 import read_mp4_header

    path = meta.path(rel)
    size = int(meta.fs.size(path))
    with meta.fs.open(path, "rb") as handle:
        def read(start: int, stop: int) -> bytes:
            handle.seek(start)
            return handle.read(stop - start)

        segments, info = read_mp4_header(read, size, name=meta.url(rel), probe_bytes=HEADER_PROBE_BYTES)
    moov_start, _ = info.moov_range
    moov = dict(segments)[moov_start]
    return sample_entry_info(moov_video_sample_entry(moov))


def check_video_info(meta: DatasetMeta, *, skip_files: set[str] = frozenset(),
                     skip_cameras: set[str | None] = frozenset()) -> list[Finding]:
    """Width, height, codec and pixel format of every MP4 against the camera's info.json entry.

    One finding per camera and property, naming the first MP4 that differs and how many do; files
    (urls) in `skip_files` and cameras in `skip_cameras` already have a header finding."""
    from lerobot_inspect.video.codec_info import same_codec, same_pix_fmt

    out: list[Finding] = []
    for camera in meta.video_keys:
        if camera in skip_cameras:
            continue
        feature = meta.features[camera]
        info = feature.info
        shape = tuple(feature.shape)
        want_h = int(shape[0]) if len(shape) == 3 else info.get("video.height")
        want_w = int(shape[1]) if len(shape) == 3 else info.get("video.width")
        checks: dict[str, list[tuple[str, int, str, str]]] = {}
        files = meta.episodes_in_video_file(camera)
        for rel, episodes in files.items():
            shown = meta.url(rel)
            if shown in skip_files:
                continue
            try:
                entry = read_sample_entry(meta, rel)
            except (FileNotFoundError, OSError, ValueError, LeRobotInspectError):
                continue  # missing, truncated or unparsable: validate's header check says so
            first = int(episodes[0])
            size = f"{entry.width}x{entry.height}"
            declared_size = f"{want_w}x{want_h}"
            if want_w is not None and want_h is not None and size != declared_size:
                checks.setdefault("video-size-mismatch", []).append((rel, first, size, declared_size))
            codec = info.get("video.codec")
            if codec and not same_codec(str(codec), entry.codec):
                checks.setdefault("video-codec-mismatch", []).append((rel, first, entry.codec, str(codec)))
            pix_fmt = info.get("video.pix_fmt")
            if pix_fmt and entry.pix_fmt and not same_pix_fmt(str(pix_fmt), entry.pix_fmt):
                checks.setdefault("video-pix-fmt-mismatch", []).append((rel, first, entry.pix_fmt, str(pix_fmt)))
        for code, items in checks.items():
            rel, first, actual, declared = items[0]
            what = {"video-size-mismatch": ("is", "frames (width x height)", "the loader would return frames "
                                            "of a size the model was not built for"),
                    "video-codec-mismatch": ("is encoded with", "codec", "decoders and LeRobot's encoder "
                                             "settings assume the declared codec"),
                    "video-pix-fmt-mismatch": ("has pixel format", "pixel format", "bit depth or chroma differ "
                                               "from what the dataset declares")}[code]
            more = f" ({len(items)} of {len(files)} MP4s of this camera differ)" if len(files) > 1 else ""
            fix = {"video-size-mismatch": f"re-encode the camera at {declared}, or set shape and "
                                          f"video.height/video.width of {camera} in meta/info.json to the file's",
                   "video-codec-mismatch": f"set video.codec of {camera} in meta/info.json to {actual!r}, or "
                                           f"re-encode the file with {declared}",
                   "video-pix-fmt-mismatch": f"re-encode the file as {declared}, or set video.pix_fmt of {camera} "
                                             f"in meta/info.json to {actual!r}"}[code]
            out.append(Finding(
                "error", code,
                f"the MP4 {what[0]} {actual} but meta/info.json declares {what[1]} {declared}{more}; {what[2]}",
                fix=fix, file=meta.url(rel), episode=first, camera=camera))
    return out
