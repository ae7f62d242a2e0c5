"""Errors lerobot_inspect raises on purpose; catching LeRobotInspectError catches them all.

LeRobotInspectError
├── OptionError          also a ValueError: a bad keyword argument; lists the allowed values
├── DatasetFormatError   not a valid LeRobot v3 dataset; names the file and the field
├── Mp4ParseError        an MP4 we cannot index: truncated, fragmented, unexpected box
│   └── FragmentedMp4Error   samples in moof boxes: decodes whole, but has no sample table to index
├── IndexStaleError      the byte index no longer matches the files it describes
├── FetchError           a byte range still failed after retries (url, range, attempts)
├── DecodeError          a frame did not decode or has the wrong pts (episode, camera, frame)
│   └── FrameTimestampError  also a ValueError, as LeRobot's: decoded pts off the request
└── ResumeError          a state dict from another dataset, seed or consumer layout

Messages name the file, the episode, the camera or the byte range, and say what to do. Errors from
pyarrow, fsspec, FFmpeg or json are translated at the boundary and chained (`raise ... from exc`).
"""

from __future__ import annotations

__all__ = [
    "DatasetFormatError",
    "DecodeError",
    "FetchError",
    "FragmentedMp4Error",
    "FrameTimestampError",
    "IndexStaleError",
    "LeRobotInspectError",
    "Mp4ParseError",
    "OptionError",
    "ResumeError",
    "check_option",
]

REPORT_BUG = (
    "This looks like a bug in lerobot_inspect; please report it with the dataset's meta/info.json "
    "and the command you ran."
)


class LeRobotInspectError(Exception):
    """Root of every error raised on purpose by lerobot_inspect."""


class OptionError(LeRobotInspectError, ValueError):
    """A keyword argument out of its allowed set or range."""


class DatasetFormatError(LeRobotInspectError):
    """The files are not a LeRobot v3 dataset we can read: names the file and the field."""


class Mp4ParseError(LeRobotInspectError):
    """An MP4 whose boxes we cannot turn into a sample table."""


class FragmentedMp4Error(Mp4ParseError):
    """A fragmented MP4: FFmpeg decodes it when read whole, but moov holds no sample table."""


class IndexStaleError(LeRobotInspectError):
    """A saved byte index describes files that have since changed."""


class FetchError(LeRobotInspectError, OSError):
    """A byte range that still failed after the retry budget was spent."""


class DecodeError(LeRobotInspectError):
    """A frame that did not decode, or decoded at the wrong place."""


class FrameTimestampError(DecodeError, ValueError):
    """Decoded pts further than tolerance_s from the request (LeRobot raises a ValueError too)."""


class ResumeError(LeRobotInspectError):
    """A state dict this dataset cannot continue exactly."""


def check_option(name: str, value: object, allowed: tuple[object, ...]) -> None:
    """Refuse a value outside a closed set, repeating it and listing the good ones."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise OptionError(f"{name}={value!r}; choose one of {choices}")
