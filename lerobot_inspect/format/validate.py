"""Structured findings about a dataset's files: what is wrong, where, and how to fix it.

`validate(root)` never raises for bad input: a dataset that cannot even be opened yields one error
finding carrying the open error's message. Checks read metadata, a few small columns
(`index`, `episode_index`, `frame_index`, `timestamp`) and each MP4's header (moov: a read or two per
file), never video pixels; decoding checks belong to the audit probe.

The MP4 header is what makes a one-frame shift of from/to_timestamp visible without decoding: LeRobot
concatenates episodes in order, so episode k of a file must start at the frame whose position is the
sum of the lengths before it. A decoder given a shifted span returns the neighbouring frame, within
tolerance, for every row; only this comparison (or the pixels) shows it.

Each fault yields one finding, at the level that explains it: rows out of order are one
`frames-out-of-order`, not also a broken `index`; an off-grid timestamp is not also a mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from lerobot_inspect.errors import DatasetFormatError, FragmentedMp4Error, LeRobotInspectError, Mp4ParseError
from lerobot_inspect.format.meta import DEFAULT_FEATURES, DatasetMeta, parquet_file

__all__ = [
    "Finding",
    "Severity",
    "check_video_file_spans",
    "summarize",
    "validate",
    "validate_meta",
]

Severity = Literal["error", "warning", "info"]
KNOWN_DTYPES = {
    "video", "image", "string", "language", "bool", "float16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
}
TIMESTAMP_TOLERANCE_S = 1e-4


@dataclass(frozen=True)
class Finding:
    """One thing validation noticed. `code` is stable, for tests and for filtering in reports."""

    severity: Severity
    code: str
    message: str
    fix: str = ""
    file: str | None = None
    episode: int | None = None
    camera: str | None = None
    feature: str | None = None
    frame: int | None = None
    dimension: int | None = None
    episodes: tuple[int, ...] | None = None  # every episode involved, when there are several

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["episodes"] = None if self.episodes is None else list(self.episodes)
        return out

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (
                self.file,
                None if self.episode is None else f"episode {self.episode}",
                None if self.camera is None else f"camera {self.camera}",
                None if self.feature is None else f"feature {self.feature}",
                None if self.frame is None else f"frame {self.frame}",
                None if self.dimension is None else f"dimension {self.dimension}",
            ) if part
        )
        text = f"{self.severity.upper():7} {self.code}: {self.message}"
        if where:
            text += f" [{where}]"
        if self.fix:
            text += f"\n        fix: {self.fix}"
        return text


def validate(root: str | Any, *, read_video_headers: bool = True) -> list[Finding]:
    """Open a dataset and check it; open failures come back as a single error finding.

    `read_video_headers=False` skips the MP4 header checks (one or two reads per video file), for
    a quick look at a remote dataset with thousands of files; the span checks then fall back to
    what meta/episodes alone can show, which misses a span shifted at the end of a file."""
    try:
        meta = DatasetMeta.open(root)
    except LeRobotInspectError as exc:
        return [Finding("error", exc.code or "unreadable-meta", str(exc),
                        fix=exc.fix or "check the file named above", file=exc.file)]
    return validate_meta(meta, read_video_headers=read_video_headers)


def validate_meta(meta: DatasetMeta, *, read_video_headers: bool = True) -> list[Finding]:
    """Every check that needs only metadata, small columns and MP4 headers; one finding per problem."""
    findings: list[Finding] = []
    headers_checked: set[str] = set()

    def video_headers(meta: DatasetMeta) -> list[Finding]:
        if not read_video_headers:
            return []
        flagged = {f.camera for f in findings if f.code == "camera-fps-mismatch"}
        return _check_video_headers(meta, skip_cameras=flagged, checked=headers_checked)

    def video_spans(meta: DatasetMeta) -> list[Finding]:
        return _check_video_spans(meta, skip_files=headers_checked)

    def video_info(meta: DatasetMeta) -> list[Finding]:  # width, height, codec, pix_fmt vs info.json
        from lerobot_inspect.format.content_audit import check_video_info  # imports Finding from here

        if not read_video_headers:
            return []
        header = {f.file for f in findings if f.file and f.file.endswith(".mp4")}
        return check_video_info(meta, skip_files=header, skip_cameras={
            f.camera for f in findings if f.code == "camera-fps-mismatch"})

    def content(meta: DatasetMeta) -> list[Finding]:  # values in the rows, stored stats
        from lerobot_inspect.format.content_audit import check_content

        return check_content(meta)

    for check in (_check_features, _check_episodes_table, _check_tasks, _check_data_files,
                  _check_video_files, video_headers, video_spans, video_info, content):
        try:
            findings.extend(check(meta))
        except DatasetFormatError as exc:
            findings.append(Finding("error", "unreadable", str(exc), fix="restore the file named above"))
    from lerobot_inspect.format.content import drop_explained

    return drop_explained(findings)


# ---------------------------------------------------------------------- checks
def _check_features(meta: DatasetMeta) -> list[Finding]:
    out = []
    info_file = meta.url("meta/info.json")
    for name, feature in meta.features.items():
        if feature.dtype not in KNOWN_DTYPES:
            out.append(Finding(
                "error", "unknown-dtype",
                f"feature {name!r} has dtype {feature.dtype!r}, which LeRobot does not write",
                fix=f"use one of {', '.join(sorted(KNOWN_DTYPES))} in meta/info.json", file=info_file,
            ))
        if "/" in name:
            out.append(Finding("error", "bad-feature-name", f"feature {name!r} contains '/'",
                               fix="rename the feature", file=info_file))
    missing = [key for key in DEFAULT_FEATURES if key not in meta.features]
    if missing:
        out.append(Finding("error", "missing-default-features",
                           f"info.json lacks the default features {', '.join(missing)}",
                           fix="re-export the dataset with LeRobot v3", file=info_file))
    for key in meta.video_keys:
        video_fps = meta.features[key].info.get("video.fps")
        if video_fps is not None and abs(float(video_fps) - meta.fps) > 1e-6:
            out.append(Finding(
                "error", "camera-fps-mismatch",
                f"camera {key} is recorded at {video_fps} fps but the dataset is {meta.fps} fps; "
                "frame timestamps will not line up",
                fix="re-encode the camera at the dataset fps", file=info_file, camera=key,
            ))
    return out


def _check_episodes_table(meta: DatasetMeta) -> list[Finding]:
    out = []
    where = meta.url("meta/episodes")
    info_file = meta.url("meta/info.json")
    episode_index = meta.episode_index
    positions = np.arange(len(episode_index))
    wrong = np.flatnonzero(episode_index != positions)
    if wrong.size:
        out.append(Finding(
            "error", "episodes-out-of-order",
            f"row {int(wrong[0])} of the episodes table holds episode {int(episode_index[wrong[0]])}; "
            "readers index episodes by row", fix="sort meta/episodes by episode_index and renumber",
            file=where, episode=int(episode_index[wrong[0]]),
        ))
    if meta.num_episodes != meta.total_episodes:
        out.append(Finding(
            "error", "total-episodes-mismatch",
            f"info.json says total_episodes={meta.total_episodes} but meta/episodes has "
            f"{meta.num_episodes} rows", fix="set total_episodes in meta/info.json to the row count",
            file=info_file,
        ))
    lengths, starts, stops = meta.lengths, meta.dataset_from_index, meta.dataset_to_index
    if int(lengths.sum()) != meta.total_frames:
        out.append(Finding(
            "error", "total-frames-mismatch",
            f"info.json says total_frames={meta.total_frames} but the episode lengths sum to "
            f"{int(lengths.sum())}", fix="set total_frames in meta/info.json to the sum of lengths",
            file=info_file,
        ))
    from lerobot_inspect.format.content import episode_range_findings  # imports Finding from here

    out.extend(episode_range_findings(starts, stops, lengths, where=where))
    return out


def _check_tasks(meta: DatasetMeta) -> list[Finding]:
    out = []
    wrong = [row for row, claimed in enumerate(meta.task_indices) if claimed != row]
    if wrong:
        out.append(Finding(
            "error", "tasks-out-of-order",
            f"row {wrong[0]} of meta/tasks.parquet has task_index {meta.task_indices[wrong[0]]}; "
            "LeRobot looks tasks up by row, so every task string would be wrong",
            fix="sort meta/tasks.parquet by task_index", file=meta.url("meta/tasks.parquet"),
        ))
    total_tasks = meta.info.get("total_tasks")
    if total_tasks is not None and int(total_tasks) != len(meta.tasks):
        out.append(Finding(
            "warning", "total-tasks-mismatch",
            f"info.json says total_tasks={total_tasks} but meta/tasks.parquet has {len(meta.tasks)}",
            fix="set total_tasks in meta/info.json", file=meta.url("meta/info.json"),
        ))
    return out


def _check_data_files(meta: DatasetMeta) -> list[Finding]:
    out: list[Finding] = []
    starts, lengths = meta.dataset_from_index, meta.lengths
    for rel, episodes in meta.episodes_in_data_file().items():
        shown = meta.url(rel)
        first = int(episodes[0])
        try:
            parquet = parquet_file(meta.fs, meta.path(rel))
            metadata = parquet.metadata
            columns = [c for c in ("index", "episode_index", "frame_index", "timestamp")
                       if c in parquet.schema_arrow.names]
            table = parquet.read(columns=columns)
        except FileNotFoundError:
            out.append(Finding("error", "missing-data-file", "data file referenced by meta/episodes is missing",
                               fix="restore the file or remove its episodes", file=shown, episode=first))
            continue
        except (pa.ArrowException, OSError) as exc:
            out.append(Finding("error", "unreadable-data-file", f"cannot read Parquet: {exc}",
                               fix="the file is truncated or corrupt; restore it", file=shown, episode=first))
            continue
        expected_rows = int(lengths[episodes].sum())
        if metadata.num_rows != expected_rows:
            out.append(Finding(
                "error", "data-rows-mismatch",
                f"file has {metadata.num_rows} rows but its {len(episodes)} episodes need {expected_rows}",
                fix="rewrite meta/episodes from the data files", file=shown, episode=first,
            ))
            continue
        if metadata.num_row_groups != len(episodes):
            out.append(Finding(
                "warning", "collapsed-row-groups",
                f"{metadata.num_row_groups} row groups for {len(episodes)} episodes; LeRobot writes one "
                "per episode, so per-episode reads will read more than they need (it still loads)",
                fix="rewrite the file with one row group per episode", file=shown, episode=first,
            ))
        out.extend(_check_data_rows(meta, shown, episodes, table, starts, lengths))
    return out


def _check_data_rows(meta: DatasetMeta, shown: str, episodes: np.ndarray, table: pa.Table,
                     starts: np.ndarray, lengths: np.ndarray) -> list[Finding]:
    """index, episode_index, frame_index and timestamp of every row agree with meta/episodes."""
    out: list[Finding] = []
    if table.num_rows == 0:
        return out
    ep_lengths = lengths[episodes]
    row_episode = np.repeat(episodes, ep_lengths)
    row_offset = np.arange(table.num_rows) - np.repeat(np.cumsum(ep_lengths) - ep_lengths, ep_lengths)
    expected_index = np.repeat(starts[episodes], ep_lengths) + row_offset

    def first_bad(mask: np.ndarray) -> int | None:
        bad = np.flatnonzero(mask)
        return None if bad.size == 0 else int(bad[0])

    checks: list[tuple[str, str, Callable[[], np.ndarray], str]] = []
    if "episode_index" in table.column_names:
        col = table.column("episode_index").to_numpy()
        checks.append(("wrong-episode-rows", "rows of the wrong episode_index", lambda: col != row_episode,
                       "rewrite meta/episodes from the data files"))
    has_frame = "frame_index" in table.column_names
    frame = table.column("frame_index").to_numpy() if has_frame else row_offset
    if "index" in table.column_names:
        idx = table.column("index").to_numpy()
        # A row whose index agrees with its own frame_index is in the wrong place, not misnumbered:
        # that is frames-out-of-order, reported once below.
        misplaced = has_frame & (idx == expected_index - row_offset + frame)
        checks.append(("index-not-contiguous", "`index` does not run contiguously from dataset_from_index",
                       lambda: (idx != expected_index) & ~misplaced, "renumber `index` and rewrite meta/episodes"))
    if has_frame:
        checks.append(("frames-out-of-order", "frame_index is not 0, 1, 2, ... within the episode",
                       lambda: frame != row_offset,
                       "sort the episode's rows by frame_index (LeRobot writes them in order and reads "
                       "windows by position)"))
    if "timestamp" in table.column_names:
        ts = table.column("timestamp").to_numpy().astype(np.float64)
        fps = meta.fps
        off_grid = np.abs(ts * fps - np.round(ts * fps)) / fps > TIMESTAMP_TOLERANCE_S
        checks.append((
            "timestamp-off-grid", f"timestamps are not multiples of 1/{fps} s",
            lambda: off_grid, "recompute timestamp = frame_index / fps",
        ))
        if has_frame:
            checks.append((
                "timestamp-mismatch", "timestamp differs from frame_index / fps",
                lambda: (np.abs(ts - frame / fps) > TIMESTAMP_TOLERANCE_S) & ~off_grid,
                "recompute timestamp = frame_index / fps",
            ))
    for code, what, mask_fn, fix in checks:
        row = first_bad(mask_fn())
        if row is not None:
            episode = int(row_episode[row])
            out.append(Finding("error", code, f"{what} (first at row {row}, frame {int(row_offset[row])})",
                               fix=fix, file=shown, episode=episode))
    return out


def _check_video_files(meta: DatasetMeta) -> list[Finding]:
    out = []
    for camera in meta.video_keys:
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            path = meta.path(rel)
            try:
                size = meta.fs.size(path)
            except FileNotFoundError:
                size = None
            if size is None:
                out.append(Finding("error", "missing-video-file", "MP4 referenced by meta/episodes is missing",
                                   fix="restore the file or re-encode the camera", file=meta.url(rel),
                                   episode=int(episodes[0]), camera=camera))
            elif size < 64:
                out.append(Finding("error", "truncated-video-file", f"MP4 is only {size} bytes",
                                   fix="restore the file", file=meta.url(rel), episode=int(episodes[0]),
                                   camera=camera))
    return out


def _check_video_headers(meta: DatasetMeta, *, skip_cameras: set[str | None], checked: set[str]) -> list[Finding]:
    """Each MP4's header parses, runs at the dataset fps, and holds its episodes where meta says.

    Adds the relative path of every file whose spans it checked to `checked`, so the metadata-only
    span check does not report the same fault a second time."""
    from lerobot_inspect.video.header import read_video_header

    out: list[Finding] = []
    for camera in meta.video_keys:
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            shown, first = meta.url(rel), int(episodes[0])
            try:
                info = read_video_header(meta.fs, meta.path(rel), name=shown)
                track = info.video
            except FileNotFoundError:
                continue  # _check_video_files reports it
            except Mp4ParseError as exc:
                if isinstance(exc, FragmentedMp4Error):
                    out.append(Finding(
                        "warning", "fragmented-video",
                        "fragmented MP4 (moof boxes): it decodes when read whole, but its sample table is "
                        "not in moov, so the byte index cannot map episodes to byte ranges and remote "
                        "reads fall back to fetching the whole file",
                        fix=f"remux it: ffmpeg -i {rel} -c copy -movflags +faststart fixed.mp4, then replace "
                        "the file", file=shown, episode=first, camera=camera))
                else:
                    out.append(Finding(
                        "error", "unreadable-video-header", str(exc),
                        fix="the MP4 is truncated or corrupt: download it again or re-encode the camera; "
                        f"its episodes {episodes.tolist()[:8]} cannot be decoded",
                        file=shown, episode=first, camera=camera))
                checked.add(rel)
                continue
            except OSError as exc:
                out.append(Finding("error", "unreadable-video-header", f"cannot read the MP4: {exc}",
                                   fix="check the file and its permissions", file=shown, episode=first,
                                   camera=camera))
                checked.add(rel)
                continue
            if camera in skip_cameras:
                checked.add(rel)
                continue
            out.extend(check_video_file_spans(meta, camera, rel, episodes, track))
            checked.add(rel)
    return out


def check_video_file_spans(meta: DatasetMeta, camera: str, rel: str, episodes: np.ndarray, track: Any) -> list[Finding]:
    """The span check of `video.spans` (shared with the loader) for one MP4, as findings."""
    from lerobot_inspect.video.spans import span_problems

    problems = span_problems(
        track, fps=meta.fps, camera=camera, episodes=episodes, lengths=meta.lengths[episodes],
        from_s=meta.column(f"videos/{camera}/from_timestamp").astype(np.float64)[episodes],
        to_s=meta.column(f"videos/{camera}/to_timestamp").astype(np.float64)[episodes])
    return [Finding("error", p.code, p.message, fix=p.fix, file=meta.url(rel), episode=p.episode, camera=camera)
            for p in problems]


def _check_video_spans(meta: DatasetMeta, *, skip_files: set[str] = frozenset()) -> list[Finding]:
    """from/to timestamps: long enough for the data, and not overlapping within a file.

    Files in `skip_files` had their spans checked against the MP4 header, which is exact; this
    metadata-only check covers the rest."""
    out = []
    fps = meta.fps
    lengths = meta.lengths
    half_frame = 0.5 / fps
    for camera in meta.video_keys:
        start = meta.column(f"videos/{camera}/from_timestamp").astype(np.float64)
        stop = meta.column(f"videos/{camera}/to_timestamp").astype(np.float64)
        unchecked = np.ones(len(lengths), dtype=bool)
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            if rel in skip_files:
                unchecked[episodes] = False
        short = np.flatnonzero(((stop - start) < lengths / fps - half_frame) & unchecked)
        for ep in short[:5].tolist():
            out.append(Finding(
                "error", "video-shorter-than-data",
                f"video span {stop[ep] - start[ep]:.4f}s holds {round((stop[ep] - start[ep]) * fps)} frames "
                f"but the episode has {int(lengths[ep])} rows",
                fix="re-encode the episode's video or fix from/to_timestamp in meta/episodes",
                file=meta.url(meta.video_file(ep, camera)), episode=ep, camera=camera,
            ))
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            if len(episodes) < 2 or rel in skip_files:
                continue
            prev_stop = stop[episodes[:-1]]
            next_start = start[episodes[1:]]
            overlap = np.flatnonzero(next_start < prev_stop - half_frame)
            for k in overlap[:5].tolist():
                ep = int(episodes[k + 1])
                out.append(Finding(
                    "error", "video-spans-overlap",
                    f"from_timestamp {next_start[k]:.4f}s is before the previous episode's to_timestamp "
                    f"{prev_stop[k]:.4f}s in the same file",
                    fix="recompute from/to_timestamp in meta/episodes from the MP4",
                    file=meta.url(rel), episode=ep, camera=camera,
                ))
    return out


def summarize(findings: list[Finding]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        counts[finding.severity] += 1
    return counts

