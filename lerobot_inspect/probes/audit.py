"""Dataset audit: a summary of what the dataset holds and every finding about it.

The summary is what a person checks first on a new dataset (episodes, frames, cameras with codec,
resolution and GOP, file layout); findings come from `format.validate`, plus loader-level checks
when the loader parts are available.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lerobot_inspect.errors import DecodeError, LeRobotInspectError
from lerobot_inspect.format import DatasetMeta, Finding, summarize, validate, validate_meta

__all__ = ["AuditReport", "DecodeCheck", "audit_dataset", "dataset_summary", "decode_check"]


@dataclass
class AuditReport:
    """Summary plus findings; `ok` is False when any finding is an error."""

    root: str
    summary: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    decode: dict[str, Any] | None = None  # the --decode pass: mode, frames, seconds, frames_per_s

    @property
    def counts(self) -> dict[str, int]:
        return summarize(self.findings)

    @property
    def ok(self) -> bool:
        return self.counts["error"] == 0

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "ok": self.ok, "counts": self.counts, "summary": self.summary,
                "decode": self.decode, "findings": [f.to_dict() for f in self.findings]}


def dataset_summary(meta: DatasetMeta) -> dict[str, Any]:
    """Counts, cameras and files, from metadata only (cheap even for remote datasets)."""
    lengths = meta.lengths
    cameras = []
    for key in meta.camera_keys:
        feature = meta.features[key]
        shape = feature.shape
        entry: dict[str, Any] = {"key": key, "kind": feature.dtype,
                                 "height": int(shape[0]) if len(shape) == 3 else None,
                                 "width": int(shape[1]) if len(shape) == 3 else None}
        if feature.is_video:
            info = feature.info
            entry.update(codec=info.get("video.codec"), pix_fmt=info.get("video.pix_fmt"),
                         gop=info.get("video.g"), fps=info.get("video.fps"),
                         files=len(meta.video_files(key)))
        cameras.append(entry)
    return {
        "codebase_version": meta.info.get("codebase_version"),
        "robot_type": meta.info.get("robot_type"),
        "fps": meta.fps,
        "episodes": meta.num_episodes,
        "frames": int(lengths.sum()),
        "tasks": len(meta.tasks),
        "episode_length": {"min": int(lengths.min()) if len(lengths) else 0,
                           "mean": float(lengths.mean()) if len(lengths) else 0.0,
                           "max": int(lengths.max()) if len(lengths) else 0},
        "features": {name: {"dtype": f.dtype, "shape": list(f.shape)} for name, f in meta.features.items()},
        "cameras": cameras,
        "data_files": len(meta.data_files()),
    }


def audit_dataset(root: str, *, decode: bool | str = False, progress: Any = None) -> AuditReport:
    """Open, summarise and validate; an unopenable dataset gives a report with one error finding.

    `decode` ("sampled", "full", True = "sampled", False = none) reads video. "sampled" runs
    `decode_check` (the first, middle and last frame of every episode and camera through the loader:
    timestamps, frame counts, shifted spans) and a short sequential run per episode for frozen
    frames; "full" decodes every frame of each MP4 once, in order (`decode_check.decode_pass`), which
    makes the same timestamp, frame-count and shifted-span checks on the way, so it runs at the
    sequential decode ceiling instead of paying a random access per checked frame. Frames/s of the
    sequential pass go into `AuditReport.decode`. The metadata-only audit (the default) does not
    import torch. `progress` is called with each finished MP4 path of the sequential pass."""
    mode = "sampled" if decode is True else (decode or None)
    try:
        meta = DatasetMeta.open(root)
    except LeRobotInspectError:
        return AuditReport(str(root), {}, validate(root))
    findings = validate_meta(meta)
    decode_summary = None
    if mode is not None and not any(f.severity == "error" for f in findings):
        import torch

        from lerobot_inspect.probes.decode_check import decode_pass

        # One intra-op thread while decoding: the per-frame tensor ops are tiny, and waking torch's
        # pool for each costs more than the work (the loader check on 1,000 episodes: 30 s with
        # the default 2 threads, 3.5 s with 1, on this 2-core machine).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            started = time.perf_counter()
            if mode == "sampled":
                findings = findings + decode_check(meta).findings
            loader_seconds = time.perf_counter() - started
            sequential = decode_pass(meta, mode=mode, progress=progress)
        finally:
            torch.set_num_threads(threads)
        findings = findings + sequential.findings
        decode_summary = {**sequential.to_dict(), "loader_check_seconds": round(loader_seconds, 4)}
    return AuditReport(str(root), dataset_summary(meta), findings, decode_summary)


@dataclass
class DecodeCheck:
    """What `decode_check` decoded (`rows`: one dict per frame asked for) and what it found."""

    rows: list[dict[str, Any]]
    findings: list[Finding]

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)


def _decoded_frame_count(decoder: Any) -> int | None:
    try:
        return len(decoder)
    except Exception:  # a decoder without a length tells us nothing; the pts check still runs
        return None


def decode_check(meta_or_root: DatasetMeta | str, *, frames_per_episode: int = 3,
                 progress: Any = None) -> DecodeCheck:
    """Decode the first / middle / last frame of every episode and camera through the loader.

    Why these checks, on any dataset (no fixture codes needed):
    - the decoder refuses a frame whose pts is off the request by more than tolerance
      (FrameTimestampError): spans that are not on the frame grid, or that point past the file;
    - the MP4 must hold exactly the frames meta/episodes gives its episodes: a file with more or
      fewer frames than the sum of its episodes' lengths means every span after the mismatch is off;
    - the last frame of an episode must differ from the first frame of the next episode in the same
      MP4. A one-frame shift of from/to_timestamp passes the pts check (the neighbour frame is on the
      grid) but makes those two requests decode the very same frame: identical pixels.
    `progress` (optional) is called with each episode as it finishes, for progress bars."""
    from lerobot_inspect.video.reader import VideoReader

    meta = meta_or_root if isinstance(meta_or_root, DatasetMeta) else DatasetMeta.open(meta_or_root)
    reader = VideoReader(meta, return_uint8=True)
    fps = meta.fps
    lengths = meta.lengths
    rows: list[dict[str, Any]] = []
    findings: list[Finding] = []
    first_frames: dict[tuple[int, str], Any] = {}
    last_frames: dict[tuple[int, str], Any] = {}
    for episode in range(meta.num_episodes):
        length = int(lengths[episode])
        picks = sorted({0, length // 2, length - 1})[: max(1, frames_per_episode)]
        if length - 1 not in picks:
            picks.append(length - 1)
        for camera in meta.video_keys:
            rel = meta.video_file(episode, camera)
            start_s, _ = meta.video_span_s(episode, camera)
            for frame in picks:
                row = {"episode_index": episode, "camera": camera, "frame_index": frame,
                       "timestamp_s": start_s + frame / fps, "file": rel, "ok": True, "error": ""}
                try:
                    decoded = reader.frames(episode, camera, [frame / fps])[0]
                except DecodeError as exc:
                    row.update(ok=False, error=str(exc))
                    findings.append(Finding(
                        "error", "frame-timestamp" if "timestamp" in str(exc) else "frame-decode",
                        f"frame {frame} (t={frame / fps:.4f}s in the episode) did not decode at its "
                        f"timestamp: {exc}",
                        fix="recompute from/to_timestamp in meta/episodes from the MP4, or re-encode the episode",
                        file=meta.url(rel), episode=episode, camera=camera))
                    rows.append(row)
                    break
                rows.append(row)
                if frame == 0:
                    first_frames[episode, camera] = decoded
                if frame == length - 1:
                    last_frames[episode, camera] = decoded
        if progress is not None:
            progress(episode)
    for camera in meta.video_keys:
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            findings.extend(_file_frame_count(meta, reader, camera, rel, episodes))
            for left, right in zip(episodes[:-1].tolist(), episodes[1:].tolist(), strict=True):
                last, first = last_frames.get((left, camera)), first_frames.get((right, camera))
                if last is not None and first is not None and bool((last == first).all()):
                    findings.append(Finding(
                        "error", "episodes-share-frame",
                        f"the last frame of episode {left} is pixel-identical to the first frame of episode "
                        f"{right}: both spans decode the same frame, so episode {left}'s from/to_timestamp is "
                        "shifted by a frame (training gets frame f+1 for frame f)",
                        fix="recompute from/to_timestamp in meta/episodes from the MP4",
                        file=meta.url(rel), episode=left, camera=camera))
    return DecodeCheck(rows, findings)


def _file_frame_count(meta: DatasetMeta, reader: Any, camera: str, rel: str, episodes: np.ndarray) -> list[Finding]:
    """Frames in the MP4 vs the sum of its episodes' lengths (the decoder's header count)."""
    try:
        key, open_decoder, _ = reader.episode_source(int(episodes[0]), camera)
        decoder = reader.decoders.get(key, open_decoder)
    except LeRobotInspectError:
        return []  # the per-frame checks above already reported why this file does not open
    from lerobot_inspect.probes.decode_check import frame_count_findings  # the full pass's own check

    count = _decoded_frame_count(decoder)
    return [] if count is None else frame_count_findings(meta, rel, camera, episodes, count)


def format_report(report: AuditReport) -> str:
    """The human-readable text `lerobot-inspect audit` prints."""
    lines = [f"dataset  {report.root}"]
    s = report.summary
    if s:
        length = s["episode_length"]
        lines.append(f"format   {s['codebase_version']}  robot {s['robot_type']}  {s['fps']} fps")
        lines.append(f"content  {s['episodes']} episodes, {s['frames']} frames, {s['tasks']} tasks; "
                     f"episode length {length['min']}..{length['max']} (mean {length['mean']:.1f})")
        lines.append(f"files    {s['data_files']} data Parquet file(s)")
        for cam in s["cameras"]:
            size = f"{cam['width']}x{cam['height']}" if cam["width"] else "?"
            if cam["kind"] == "video":
                lines.append(f"camera   {cam['key']}: video {cam['codec']} {size} {cam['pix_fmt']}, "
                             f"GOP {cam['gop']}, {cam['files']} MP4 file(s)")
            else:
                lines.append(f"camera   {cam['key']}: PNG images in Parquet, {size}")
    if report.decode:
        d = report.decode
        lines.append(f"decode   {d['mode']}: {d['frames']} frames from {d['files']} MP4(s) in {d['seconds']:.2f} s "
                     f"({d['frames_per_s']:.0f} frames/s sequential)"
                     + (f"; loader check {d['loader_check_seconds']:.2f} s" if d["mode"] == "sampled" else ""))
    counts = report.counts
    lines.append(f"findings {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    lines.extend("  " + str(f).replace("\n", "\n  ") for f in report.findings)
    lines.append("verdict  " + ("OK" if report.ok else "FAILED: fix the errors above"))
    return "\n".join(lines)


