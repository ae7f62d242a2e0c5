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
- "full": every frame of every episode;
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

__all__ = ["BATCH_FRAMES", "DecodeMode", "DecodePass", "decode_pass", "frozen_spans"]

DecodeMode = Literal["sampled", "full"]
DECODE_MODES = ("sampled", "full")
FROZEN_MIN_FRAMES = 5
FROZEN_MAX_MEAN_ABS_DIFF = 0.5  # uint8 levels: 0.5/255 of full scale
SAMPLED_RUN_FRAMES = 12
BATCH_FRAMES = 64
DIFF_PIXELS = 1 << 16


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
            for episode in episodes.tolist():
                length = int(lengths[episode])
                first = round(float(from_s[episode]) * fps)
                start, stop = 0, length
                if mode == "sampled" and length > SAMPLED_RUN_FRAMES:
                    start = (length - SAMPLED_RUN_FRAMES) // 2
                    stop = start + SAMPLED_RUN_FRAMES
                stop = min(stop, available - first)
                if stop - start < 1:
                    continue
                diffs = _episode_diffs(decoder, first + start, first + stop)
                result.frames += stop - start
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


def _episode_diffs(decoder: Any, start: int, stop: int) -> np.ndarray:
    """Mean absolute difference (uint8 levels) of each frame in [start, stop) with the previous one,
    decoding in batches; the first frame has no predecessor, so len = stop - start - 1.

    The difference is taken in numpy on the decoder's uint8 buffer (zero copy): torch's intra-op
    pool costs ~2 ms per small op on a busy 2-core machine, more than decoding the batch."""
    out: list[np.ndarray] = []
    previous = None
    stride = 1
    for batch_start in range(start, stop, BATCH_FRAMES):
        frames = decoder.get_frames_in_range(batch_start, min(stop, batch_start + BATCH_FRAMES)).data.numpy()
        if previous is None:
            stride = max(1, int(np.sqrt(frames.shape[1] * frames.shape[2] / DIFF_PIXELS)))
        grid = frames[:, ::stride, ::stride]
        if previous is not None:
            grid = np.concatenate([previous, grid])
        if grid.shape[0] > 1:
            out.append(np.abs(grid[1:].astype(np.int16) - grid[:-1]).mean(axis=(1, 2, 3)))
        previous = grid[-1:]
    return np.concatenate(out) if out else np.zeros(0)
