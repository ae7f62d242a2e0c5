"""Decode-ahead: a streaming consumer knows which frames its next samples need, so it decodes them
in batches, in decode order, and shares each decoded frame between the windows that use it.

Random access pays per call: a `get_frames_at` call, a seek to the previous keyframe and the
frames between, for every sample. The episode pool knows its schedule: when an episode's rows are
read, the stream tells this source every remaining sample of the episode (`expect`), in emission
order. Per (episode, camera) the pure `AheadPlan` lists the distinct frames in first-use order with
the last sample that uses each. A sample whose frames are not decoded yet triggers one batch: the
next `depth` frames in first-use order (at least those it needs), sorted, decoded in one
TorchCodec call per run of consecutive frames. A frame is dropped right after its last use.

With the pool's `frames_in_order=True` (the default) first-use order is frame order, so a batch is
one sequential run and a window [-1/fps, 0] reuses the frame the previous sample decoded: each
frame of an episode is decoded once, forward, `depth` at a time, while samples are still drawn
from `pool_size` episodes. Memory: about (depth + window span) frames per (pool episode, camera).
With frames shuffled inside episodes, first-use order is random, batches are sorted sets of random
frames and a frame can wait long for its last use (at most the episode's frames are held).

Same frames as direct decoding: the frame indices come from the reader's own `locate` (LeRobot's
`round(ts * fps)`, or nearest pts from the byte index), each returned frame's pts is checked
against the request with the same tolerance, and the declared-size check runs on every sample.
A sample that does not match the plan (a caller that asks for other frames) is decoded directly.
The plan is rebuilt from the schedule on resume, so resume needs no state of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lerobot_inspect.errors import LeRobotInspectError, check_int
from lerobot_inspect.io._forks import ProcessLocal

if TYPE_CHECKING:
    import torch

    from lerobot_inspect.video.decode import FrameRequest
    from lerobot_inspect.video.reader import VideoReader

__all__ = ["DEFAULT_DECODE_AHEAD", "AheadPlan", "DecodeAhead", "ahead_plan"]

DEFAULT_DECODE_AHEAD = 16


@dataclass(frozen=True)
class AheadPlan:
    """Distinct frames of one (episode, camera) over its remaining uses, in first-use order.

    frames     (n,) decoder frame indices, each once, ordered by the use that first needs them.
    first_use  (n,) that use (non-decreasing).
    last_use   (n,) the last use that needs the frame: it can be dropped after it.
    """

    frames: np.ndarray
    first_use: np.ndarray
    last_use: np.ndarray

    def needed_through(self, use: int) -> int:
        """How many frames (a prefix of `frames`) uses 0..`use` need."""
        return int(np.searchsorted(self.first_use, use, side="right"))

    def next_batch(self, decoded: int, use: int, depth: int) -> tuple[int, int]:
        """[decoded, stop): the prefix slice to decode before `use` (empty when it is decoded):
        what `use` still needs, grown to `depth` frames so later uses find their frames ready."""
        needed = self.needed_through(use)
        if needed <= decoded:
            return decoded, decoded
        return decoded, max(needed, min(decoded + depth, len(self.frames)))


def ahead_plan(uses: Sequence[np.ndarray]) -> AheadPlan:
    """The `AheadPlan` of a sequence of uses, each the frame indices one sample asks for."""
    counts = np.array([len(u) for u in uses], dtype=np.int64)
    flat = np.concatenate([np.asarray(u, dtype=np.int64) for u in uses]) if len(uses) else np.empty(0, np.int64)
    use_of = np.repeat(np.arange(len(uses), dtype=np.int64), counts)
    if not flat.size:
        empty = np.empty(0, dtype=np.int64)
        return AheadPlan(empty, empty, empty)
    unique, first_position = np.unique(flat, return_index=True)
    last_position = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]
    order = np.argsort(first_position, kind="stable")
    return AheadPlan(unique[order], use_of[first_position[order]], use_of[last_position[order]])


class _CameraBuffer:
    """Decoded frames of one (episode, camera) and its plan: index -> (uint8 frame, pts).

    `uses[u]` are the decoder frame indices of use u and `requested[u]` the seconds in the file they
    were located from (what each frame's pts is checked against), both located once for the episode."""

    def __init__(self, uses: list[list[int]], requested: list[np.ndarray], plan: AheadPlan, where: FrameRequest
                 ) -> None:
        self.uses = uses
        self.requested = requested
        self.plan = plan
        self.where = where
        self.decoded = 0  # plan.frames[:decoded] were decoded
        self.batches = 0
        self.frames: dict[int, tuple[np.ndarray, float]] = {}
        self.drop_at: dict[int, list[int]] = {}
        for frame, last in zip(plan.frames.tolist(), plan.last_use.tolist(), strict=True):
            self.drop_at.setdefault(last, []).append(frame)


class _EpisodeState:
    def __init__(self, requests: list[Mapping[str, np.ndarray]]) -> None:
        self.requests = requests
        self.use = 0
        self.cameras: dict[str, _CameraBuffer | None] = {}  # None: this camera is decoded directly


class DecodeAhead(ProcessLocal):
    """A `FrameSource` over a `VideoReader` that decodes the frames of announced samples in batches.

    `expect(episode, requests)` announces the episode's next samples (each a {camera: timestamps}
    request, in the order `frames_for` will be called); `depth` is how many frames per (episode,
    camera) one decode call produces ahead of need: more amortises the per-call cost and holds more
    decoded frames. Episodes never announced are decoded directly by the reader. `camera_threads`
    decodes cameras of one sample concurrently (1: one after the other, for DataLoader workers that
    already use every core)."""

    def __init__(self, reader: VideoReader, *, depth: int = DEFAULT_DECODE_AHEAD, camera_threads: int = 0) -> None:
        self.reader = reader
        self.depth = check_int("decode_ahead", depth, minimum=1)
        self.camera_threads = check_int("camera_threads", camera_threads)
        self._start_process_state()

    _PROCESS_FIELDS = ("_episodes", "_pool", "decode_calls", "frames_decoded")

    def _init_process_state(self) -> None:
        # Buffers, threads and counters belong to one process: a forked or unpickled copy starts empty.
        self._episodes: dict[int, _EpisodeState] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.decode_calls = 0
        self.frames_decoded = 0

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.reader.cameras

    def expect(self, episode: int, requests: Sequence[Mapping[str, np.ndarray]]) -> None:
        """The next `frames_for` calls for `episode`, in order; replaces an earlier announcement."""
        self._finish(int(episode))
        if requests:
            self._episodes[int(episode)] = _EpisodeState(list(requests))

    def held_frames(self) -> int:
        """Decoded frames in the buffers now (for memory accounting and tests)."""
        return sum(len(buffer.frames) for state in self._episodes.values()
                   for buffer in state.cameras.values() if buffer is not None)

    def prefetch(self, episodes: Iterable[int]) -> None:
        self.reader.prefetch(episodes)

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        state = self._episodes.get(int(episode))
        if state is None or state.use >= len(state.requests):
            return self.reader.frames_for(episode, requests)
        use = state.use
        state.use += 1
        planned = state.requests[use]
        cameras = list(requests)
        same = set(cameras) == set(planned) and all(np.array_equal(requests[c], planned[c]) for c in cameras)
        if not same:  # not the announced sample: the plan no longer describes the calls
            self._finish(int(episode))
            return self.reader.frames_for(episode, requests)
        # Only cameras with work to do (a plan to make, a batch to decode, a direct decode) go to the
        # threads; most samples find their frames decoded and are gathered here, without a thread hop.
        busy = [c for c in cameras if self._has_work(state, c, use)]
        threads = self.camera_threads or len(cameras)
        futures = {}
        if threads > 1 and len(busy) > 1:
            pool = self._thread_pool(threads)
            futures = {c: pool.submit(self._camera_frames, state, episode, c, requests[c], use) for c in busy}
        out = {c: futures[c].result() if c in futures else self._camera_frames(state, episode, c, requests[c], use)
               for c in cameras}
        if state.use >= len(state.requests):
            self._finish(int(episode))
        return out

    def _has_work(self, state: _EpisodeState, camera: str, use: int) -> bool:
        """Whether `use` of `camera` needs more than a gather of decoded frames."""
        buffer = state.cameras.get(camera)
        if buffer is None:  # not planned yet, or decoded directly
            return True
        start, stop = self._next_batch(buffer, use)
        return stop > start

    def _next_batch(self, buffer: _CameraBuffer, use: int) -> tuple[int, int]:
        """The plan's [start, stop) to decode before `use`. Batches grow 2, 4, 8, ... up to `depth`: a
        newly admitted episode costs little before its first sample (first-batch latency), a long-lived
        one amortises the per-call cost."""
        return buffer.plan.next_batch(buffer.decoded, use, min(self.depth, 2 << buffer.batches))

    def _finish(self, episode: int) -> None:
        state = self._episodes.pop(episode, None)
        if state is not None:
            for camera in state.cameras:
                self.reader.release_episode(episode, camera)

    def _camera_frames(self, state: _EpisodeState, episode: int, camera: str, timestamps: np.ndarray,
                       use: int) -> torch.Tensor:
        import torch

        from lerobot_inspect.video.decode import checked_frames, decode_indices

        if camera not in state.cameras:
            state.cameras[camera] = self._plan_camera(state, episode, camera)
        buffer = state.cameras[camera]
        if buffer is None:
            return self.reader.frames(episode, camera, timestamps)
        start, stop = self._next_batch(buffer, use)
        if stop > start:
            decoder, _, _, where = self.reader.decoder(episode, camera, episode_decoder=True)
            batch = np.sort(buffer.plan.frames[start:stop])
            data, pts = decode_indices(decoder, batch.tolist(), where=where, ranges=True)
            self.decode_calls += 1
            self.frames_decoded += len(batch)
            # TorchCodec's (N, C, H, W) is a view of packed RGB: transposed once here, per decoded frame,
            # so each sample's window gather and the batch collate are plain copies (numpy's transposing
            # copy of the same frames again in every window and batch was a quarter of a worker's CPU).
            array = np.ascontiguousarray(data.numpy())
            for k, frame in enumerate(batch.tolist()):
                buffer.frames[frame] = (array[k], float(pts[k]))
            buffer.decoded = stop
            buffer.batches += 1
        # Gathered in numpy: a torch op per sample pays torch's intra-op thread pool (ms on a busy
        # 2-core machine), a numpy copy does not.
        held = [buffer.frames[i] for i in buffer.uses[use]]
        frames = torch.from_numpy(np.stack([frame for frame, _ in held]))
        pts = np.array([p for _, p in held], dtype=np.float64)
        frames = checked_frames(frames, pts, buffer.requested[use], where=buffer.where,
                                tolerance_s=self.reader.tolerance_s, return_uint8=self.reader.return_uint8)
        for frame in buffer.drop_at.pop(use, ()):
            buffer.frames.pop(frame, None)
        return self.reader.check_size(frames, buffer.where)

    def _plan_camera(self, state: _EpisodeState, episode: int, camera: str) -> _CameraBuffer | None:
        """The camera's plan over the announced uses, or None (decode directly) when a use cannot be
        located now: its error then surfaces at that sample, from the direct path, as without the plan."""
        try:
            timestamps = [np.asarray(request[camera], dtype=np.float64) for request in state.requests]
            _, requested, located, where = self.reader.locate(episode, camera, np.concatenate(timestamps))
        except (LeRobotInspectError, KeyError):
            return None
        cuts = np.cumsum([len(t) for t in timestamps])[:-1]
        uses = np.split(located, cuts)
        return _CameraBuffer([use.tolist() for use in uses], np.split(requested, cuts), ahead_plan(uses), where)

    def _thread_pool(self, threads: int) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lerobot-inspect-ahead")
        return self._pool

    def __repr__(self) -> str:
        return f"DecodeAhead({self.reader!r}, depth={self.depth})"
