"""Frames of one (episode, camera) from a dataset's MP4s, several cameras decoded concurrently.

Local files are opened by path with `seek_mode="approximate"` (LeRobot's choice: the demuxer reads
only the header); other fsspec roots go through a file object. The byte-index path (header plus one
episode's span, for remote roots) plugs in through `episode_source`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import DatasetFormatError, DecodeError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.video.decode import DEFAULT_DECODER_CACHE_SIZE, DecoderCache, FrameRequest, decode_at

__all__ = ["VideoReader"]

# (episode, camera) -> (cache key, opener of a decoder, optional pts table of the decoder's frames)
EpisodeSource = Callable[[int, str], tuple[object, Callable[[], object], "np.ndarray | None"]]


class VideoReader:
    """Decode an episode's frames at timestamps relative to the episode's start."""

    def __init__(
        self,
        meta: DatasetMeta,
        *,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        decoder_cache_size: int = DEFAULT_DECODER_CACHE_SIZE,
        episode_source: EpisodeSource | None = None,
    ) -> None:
        self.meta = meta
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8
        self.decoders = DecoderCache(decoder_cache_size)
        self.episode_source = episode_source or self._whole_file_source
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Pickled into DataLoader workers (spawn): open decoders and threads stay behind."""
        state = self.__dict__.copy()
        state.update(_pool=None, _pool_pid=-1, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _whole_file_source(self, episode: int, camera: str) -> tuple[object, Callable[[], object], None]:
        rel = self.meta.video_file(episode, camera)
        path = self.meta.path(rel)
        fs = self.meta.fs

        def open_decoder() -> object:
            from torchcodec.decoders import VideoDecoder

            try:
                if isinstance(fs, LocalFileSystem):
                    return VideoDecoder(path, seek_mode="approximate")
                return VideoDecoder(fs.open(path, "rb"), seek_mode="approximate")
            except FileNotFoundError:
                raise DatasetFormatError(
                    f"{self.meta.url(rel)}: MP4 of camera {camera} for episode {episode} is missing; "
                    "restore it (`lerobot-inspect audit` lists every missing file)"
                ) from None
            except (RuntimeError, ValueError) as exc:
                raise DecodeError(
                    f"{self.meta.url(rel)}: FFmpeg cannot open the MP4 of camera {camera} "
                    f"(episode {episode}): {exc}. The file is truncated or corrupt; restore it"
                ) from exc

        return ("file", rel), open_decoder, None

    def frames(self, episode: int, camera: str, timestamps_s: Sequence[float] | np.ndarray) -> torch.Tensor:
        """(k, C, H, W) frames of `camera` at times relative to the episode's first frame."""
        start_s, _ = self.meta.video_span_s(episode, camera)
        in_file = start_s + np.asarray(timestamps_s, dtype=np.float64)
        key, open_decoder, pts_s = self.episode_source(episode, camera)
        decoder = self.decoders.get(key, open_decoder)
        indices = None
        if pts_s is not None:
            from lerobot_inspect.video.decode import nearest_frames

            indices = nearest_frames(pts_s, in_file)
        where = FrameRequest(self.meta.url(self.meta.video_file(episode, camera)), episode, camera)
        return decode_at(decoder, in_file, where=where, tolerance_s=self.tolerance_s,
                         return_uint8=self.return_uint8, frame_indices=indices)

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Several cameras of one episode, one thread per camera (as LeRobot decodes them)."""
        if len(requests) <= 1:
            return {camera: self.frames(episode, camera, ts) for camera, ts in requests.items()}
        pool = self._thread_pool()
        futures = {camera: pool.submit(self.frames, episode, camera, ts) for camera, ts in requests.items()}
        return {camera: future.result() for camera, future in futures.items()}

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.meta.video_keys)),
                                                thread_name_prefix="lerobot-inspect-decode")
                self._pool_pid = os.getpid()
            return self._pool
