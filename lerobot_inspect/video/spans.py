"""Where each episode's frames must be in its MP4, checked against meta/episodes: one pure function
that the audit (as findings) and the loader (as a refusal) both call.

LeRobot concatenates episodes in table order, so episode k of a file starts at the frame whose
display position is the sum of the lengths before it. A from_timestamp shifted by a whole frame
still decodes within tolerance_s, so without this comparison the decoder would hand back the
neighbouring frame for every row, silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["SPAN_TOLERANCE_S", "WRONG_FRAME_CODES", "SpanProblem", "span_problems"]

SPAN_TOLERANCE_S = 1e-4

# Problems after which decoding would return other frames than the rows ask for. A to_timestamp
# past the episode alone is not among them: the loader asks for frames by row timestamp.
WRONG_FRAME_CODES = frozenset({"video-span-shifted", "video-frames-missing", "camera-fps-mismatch"})


class SampleTable(Protocol):
    """What the check needs of an MP4 video track (`video.mp4.VideoTrack` has it)."""

    timescale: int
    pts: np.ndarray
    duration: np.ndarray

    @property
    def n_samples(self) -> int: ...

    @property
    def display_order(self) -> np.ndarray: ...


@dataclass(frozen=True)
class SpanProblem:
    """One episode whose span disagrees with the file; `affects_file` marks a fault of the whole
    file (its fps), which every episode in it inherits."""

    code: str
    episode: int
    message: str
    fix: str
    affects_file: bool = False


def span_problems(track: SampleTable, *, fps: int, camera: str, episodes: np.ndarray, lengths: np.ndarray,
                  from_s: np.ndarray, to_s: np.ndarray) -> list[SpanProblem]:
    """Compare each episode's [from, to) with where the file's frames put it; one problem per
    episode at most. `episodes`, `lengths`, `from_s`, `to_s` are the file's episodes in table order."""
    episodes = np.asarray(episodes, dtype=np.int64)
    if track.n_samples == 0:
        return [SpanProblem("video-frames-missing", int(episodes[0]), "the MP4 holds no frames",
                            "re-encode the camera", affects_file=True)]
    ticks_per_frame = float(np.median(track.duration))
    file_fps = track.timescale / ticks_per_frame if ticks_per_frame > 0 else 0.0
    if abs(file_fps - fps) > 0.01 * fps:
        return [SpanProblem(
            "camera-fps-mismatch", int(episodes[0]),
            f"the MP4 runs at {file_fps:.3f} fps (frame duration {ticks_per_frame:.0f}/{track.timescale} s) "
            f"but the dataset is {fps} fps; frame timestamps will not line up",
            "re-encode the camera at the dataset fps", affects_file=True)]
    order = track.display_order
    pts_s = track.pts[order] / float(track.timescale)
    end_s = float(track.pts[order[-1]] + track.duration[order[-1]]) / track.timescale
    frame_starts = np.append(pts_s, end_s)  # frame_starts[n] = where frame n starts; [-1] = end of file
    lengths = np.asarray(lengths, dtype=np.int64)
    start = np.asarray(from_s, dtype=np.float64)
    stop = np.asarray(to_s, dtype=np.float64)
    first_frame = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    tolerance = SPAN_TOLERANCE_S
    out: list[SpanProblem] = []
    for k, ep in enumerate(episodes.tolist()):
        length, first = int(lengths[k]), int(first_frame[k])
        if first + length > track.n_samples:
            out.append(SpanProblem(
                "video-frames-missing", ep,
                f"the MP4 holds {track.n_samples} frames but its episodes {episodes.tolist()[:8]} need "
                f"{int(lengths.sum())}: episode {ep}'s frames {max(0, track.n_samples - first)}..{length - 1} "
                "are not in the file", "re-encode the episode's video (the file was cut short or an "
                "episode was dropped from it)"))
            break
        want_from, want_to = float(frame_starts[first]), float(frame_starts[first + length])
        fix = (f"set meta/episodes videos/{camera}/from_timestamp, to_timestamp of episode {ep} to "
               f"{want_from!r}, {want_to!r}")
        if not abs(start[k] - want_from) <= tolerance:  # written so that NaN fails
            shift = (start[k] - want_from) * fps
            out.append(SpanProblem(
                "video-span-shifted", ep,
                f"from_timestamp {start[k]:.6f}s but episode {ep} starts at frame {first} of this MP4 (after "
                f"the episodes before it), at {want_from:.6f}s: the span is shifted by {shift:+.2f} frames, so "
                "every row would decode a neighbouring frame (within tolerance_s, silently)", fix))
        elif stop[k] < want_to - tolerance:
            held = int(np.searchsorted(pts_s, stop[k] - tolerance, side="left")) - first
            out.append(SpanProblem(
                "video-shorter-than-data", ep,
                f"to_timestamp {stop[k]:.6f}s leaves {held} frames in the span but the episode has {length} "
                f"rows (the frames end at {want_to:.6f}s)", fix))
        elif not stop[k] <= want_to + tolerance:
            out.append(SpanProblem(
                "video-spans-overlap", ep,
                f"to_timestamp {stop[k]:.6f}s runs past the episode's last frame (which ends at {want_to:.6f}s) "
                "into the next episode's frames", fix))
    return out
