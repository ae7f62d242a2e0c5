"""Sequential decode pass of the audit: frozen or duplicated frames, and how fast it decodes.

Each MP4 is opened once with TorchCodec and its episodes are decoded in file order with
`get_frames_in_range` (batches of `BATCH_FRAMES`), so a full pass costs what a plain sequential
decode of the same files costs: no seek per frame, no reopen per episode. Consecutive frames are
compared as they arrive (mean absolute difference in uint8 levels, on a pixel grid of at most
`DIFF_PIXELS` points), and a span of at least `FROZEN_MIN_FRAMES` frames whose neighbours differ by
less than `FROZEN_MAX_MEAN_ABS_DIFF` (0.5/255 of full scale) is one `frozen-frames` warning naming
the episode, camera and frame range. Clean video, even a robot at rest, changes by more than that
between frames (encoder noise alone is above it at LeRobot's CRF 30); a stalled camera or a writer
that repeated a frame repeats it exactly.

Modes:
- "full": every frame of every episode; it also checks what the loader check looks at (`audit`
  then skips that check): the MP4 holds the frames its episodes need (`video-frame-count`), each
  episode's first frame is shown at its from_timestamp (`frame-timestamp`), and no episode starts
  with the previous episode's last frame (`episodes-share-frame`, a span shifted by one frame);
- "sampled": a run of `SAMPLED_RUN_FRAMES` consecutive frames from the middle of each episode (the
  whole episode when shorter), which sees a frozen span only where it looks.

torchcodec (and with it torch) is imported inside `decode_pass`, so a metadata-only audit never
loads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lerobot_inspect.format import DatasetMeta, Finding

__all__ = ["BATCH_FRAMES", "DecodeMode", "DecodePass", "decode_pass", "frame_count_findings", "frozen_spans"]

DecodeMode = Literal["sampled", "full"]
DECODE_MODES = ("sampled", "full")
FROZEN_MIN_FRAMES = 5
FROZEN_MAX_MEAN_ABS_DIFF = 0.5  # uint8 levels: 0.5/255 of full scale
SAMPLED_RUN_FRAMES = 12
BATCH_FRAMES = 64
DIFF_PIXELS = 1 << 16
TIMESTAMP_TOLERANCE_S = 1e-4


@dataclass
class DecodePass:
    """What the sequential pass decoded, how fast, and what it found."""

    mode: str
    frames: int = 0
    seconds: float = 0.0
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "frames": self.frames, "seconds": round(self.seconds, 4),
                "frames_per_s": round(self.frames_per_s, 1), "files": self.files,
                "frozen_min_frames": FROZEN_MIN_FRAMES, "frozen_max_mean_abs_diff": FROZEN_MAX_MEAN_ABS_DIFF}


def frozen_spans(diffs: np.ndarray, *, min_frames: int = FROZEN_MIN_FRAMES,
                 max_diff: float = FROZEN_MAX_MEAN_ABS_DIFF) -> list[tuple[int, int]]:
    """[start, stop) frame spans where every frame differs from the one before by less than
    `max_diff`; `diffs[i]` compares frame i + 1 with frame i. Spans shorter than `min_frames`
    frames are not reported."""
    still = np.asarray(diffs) < max_diff
    spans, start = [], None
    for i, s in enumerate(still.tolist()):
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i + 1 - start >= min_frames:
                spans.append((start, i + 1))
            start = None
    if start is not None and len(still) + 1 - start >= min_frames:
        spans.append((start, len(still) + 1))
    return spans


def _open_decoder(meta: DatasetMeta, rel: str) -> Any:
    from fsspec.implementations.local import LocalFileSystem
    from torchcodec.decoders import VideoDecoder

    path = meta.path(rel)
    source: Any = path if isinstance(meta.fs, LocalFileSystem) else meta.fs.open(path, "rb")
    # Sequential reading: "approximate" trusts the header instead of scanning the file at open.
    return VideoDecoder(source, seek_mode="approximate", dimension_order="NHWC")


def decode_pass(meta: DatasetMeta, *, mode: DecodeMode = "sampled",
                progress: Callable[[str], None] | None = None) -> DecodePass:
    """Decode each episode of each camera in file order and report frozen spans (see the module
    docstring); `progress` is called with each MP4's path as it finishes."""
    if mode not in DECODE_MODES:
        from lerobot_inspect.errors import OptionError

        raise OptionError(f"decode mode {mode!r}; choose one of {DECODE_MODES}")
    import torchcodec.decoders  # noqa: F401 - imported before the clock starts: frames/s measures decoding
    result = DecodePass(mode)
    fps = meta.fps
    lengths = meta.lengths
    started = time.perf_counter()
    for camera in meta.video_keys:
        from_s = meta.column(f"videos/{camera}/from_timestamp").astype(np.float64)
        for rel, episodes in meta.episodes_in_video_file(camera).items():
            try:
                decoder = _open_decoder(meta, rel)
                available = int(decoder.metadata.num_frames or 0)
            except Exception:  # a file FFmpeg cannot open is reported by the header checks
                continue
            result.files += 1
            if mode == "full":
                result.findings.extend(frame_count_findings(meta, rel, camera, episodes, available))
            previous_last: tuple[int, np.ndarray] | None = None
            for episode in episodes.tolist():
                length = int(lengths[episode])
                first = round(float(from_s[episode]) * fps)
                start, stop = 0, length
                if mode == "sampled" and length > SAMPLED_RUN_FRAMES:
                    start = (length - SAMPLED_RUN_FRAMES) // 2
                    stop = start + SAMPLED_RUN_FRAMES
                stop = min(stop, available - first)
                if stop - start < 1:
                    previous_last = None
                    continue
                run = _decode_run(decoder, first + start, first + stop)
                diffs = run.diffs
                result.frames += stop - start
                if mode == "full":
                    result.findings.extend(_run_checks(meta, rel, camera, episode, float(from_s[episode]), run,
                                                       previous_last))
                    previous_last = (episode, run.last)
                spans = frozen_spans(diffs)
                result.rows.append({"episode_index": episode, "camera": camera, "file": rel,
                                    "first_frame": start, "frames": stop - start,
                                    "min_diff": float(diffs.min()) if diffs.size else None,
                                    "frozen_spans": len(spans)})
                if spans:
                    a, b = max(spans, key=lambda s: s[1] - s[0])
                    listed = ", ".join(f"{start + s}..{start + e - 1}" for s, e in spans[:4])
                    result.findings.append(Finding(
                        "warning", "frozen-frames",
                        f"frames {listed} of episode {episode} repeat the same image ({b - a} frames in a row "
                        f"differ by less than {FROZEN_MAX_MEAN_ABS_DIFF}/255 on average); the camera stalled or "
                        "the writer repeated a frame, so the model sees a still scene while state and action move",
                        fix="re-record the episode or drop its frozen span (and the rows that go with it)",
                        file=meta.url(rel), episode=episode, camera=camera, frame=start + a))
            if progress is not None:
                progress(rel)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Run:
    """One decoded run of an episode: neighbour differences, first/last frame, first pts."""

    diffs: np.ndarray
    first: np.ndarray
    last: np.ndarray
    first_pts_s: float


def _decode_run(decoder: Any, start: int, stop: int) -> _Run:
    """Decode frames [start, stop) of the file in batches and take the mean absolute difference
    (uint8 levels) of each frame with the one before (len = stop - start - 1), on a grid of at most
    DIFF_PIXELS points.

    The difference is taken in numpy on the decoder's uint8 buffer (zero copy): torch's intra-op
    pool costs ~2 ms per small op on a busy 2-core machine, more than decoding the batch."""
    out: list[np.ndarray] = []
    previous = first = last = None
    first_pts = float("nan")
    stride = 1
    for batch_start in range(start, stop, BATCH_FRAMES):
        batch = decoder.get_frames_in_range(batch_start, min(stop, batch_start + BATCH_FRAMES))
        frames = batch.data.numpy()
        if previous is None:
            stride = max(1, int(np.sqrt(frames.shape[1] * frames.shape[2] / DIFF_PIXELS)))
            first = frames[0].copy()
            first_pts = float(batch.pts_seconds[0])
        last = frames[-1]
        grid = frames[:, ::stride, ::stride]
        if previous is not None:
            grid = np.concatenate([previous, grid])
        if grid.shape[0] > 1:
            out.append(np.abs(grid[1:].astype(np.int16) - grid[:-1]).mean(axis=(1, 2, 3)))
        previous = grid[-1:]
    return _Run(np.concatenate(out) if out else np.zeros(0), first, last.copy(), first_pts)


def frame_count_findings(meta: DatasetMeta, rel: str, camera: str, episodes: np.ndarray,
                         available: int) -> list[Finding]:
    """Frames in the MP4 (its header, as the decoder reads it) vs the sum of its episodes' lengths."""
    expected = int(meta.lengths[episodes].sum())
    if available == expected:
        return []
    return [Finding(
        "error" if available < expected else "warning", "video-frame-count",
        f"the MP4 holds {available} frames but meta/episodes gives its episodes {episodes.tolist()[:8]} "
        f"{expected} frames in total", fix="re-encode the file or fix the episodes' lengths and spans",
        file=meta.url(rel), episode=int(episodes[0]), camera=camera)]


def _run_checks(meta: DatasetMeta, rel: str, camera: str, episode: int, from_s: float, run: _Run,
                previous_last: tuple[int, np.ndarray] | None) -> list[Finding]:
    """What the loader check looks at, from the sequential pass: the episode's first frame is shown
    at from_timestamp, and it is not the previous episode's last frame (a span shifted by a frame
    decodes a neighbour's frame within tolerance, silently)."""
    out = []
    if not abs(run.first_pts_s - from_s) <= TIMESTAMP_TOLERANCE_S:
        out.append(Finding(
            "error", "frame-timestamp",
            f"episode {episode}'s first frame is shown at {run.first_pts_s:.6f}s in the MP4 but from_timestamp "
            f"is {from_s:.6f}s: its span is not on the file's frame grid",
            fix="recompute from/to_timestamp in meta/episodes from the MP4, or re-encode the episode",
            file=meta.url(rel), episode=episode, camera=camera, frame=0))
    if previous_last is not None and previous_last[1].shape == run.first.shape \
            and bool((previous_last[1] == run.first).all()):
        left = previous_last[0]
        out.append(Finding(
            "error", "episodes-share-frame",
            f"the last frame of episode {left} is pixel-identical to the first frame of episode {episode}: both "
            f"spans decode the same frame, so episode {left}'s from/to_timestamp is shifted by a frame",
            fix="recompute from/to_timestamp in meta/episodes from the MP4", file=meta.url(rel), episode=left,
            camera=camera, episodes=(left, episode)))
    return out
