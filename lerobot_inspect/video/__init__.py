"""MP4 box parsing, the episode byte index and video decoding."""

from lerobot_inspect.video.byte_index import (
    BYTE_INDEX_DIR,
    BYTE_INDEX_FORMAT,
    ByteIndex,
    EpisodeBytes,
    VideoFileRef,
    build_byte_index,
)
from lerobot_inspect.video.mp4 import (
    EpisodeSpan,
    Mp4Info,
    VideoTrack,
    custom_frame_mappings_json,
    episode_span,
    frame_mappings_json,
    parse_mp4,
    read_mp4_header,
    reorder_depth,
)

__all__ = [
    "BYTE_INDEX_DIR",
    "BYTE_INDEX_FORMAT",
    "ByteIndex",
    "EpisodeBytes",
    "EpisodeSpan",
    "Mp4Info",
    "VideoFileRef",
    "VideoTrack",
    "build_byte_index",
    "custom_frame_mappings_json",
    "episode_span",
    "frame_mappings_json",
    "parse_mp4",
    "read_mp4_header",
    "reorder_depth",
]
