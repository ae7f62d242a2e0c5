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
    "check_int",
    "check_option",
]

REPORT_BUG = (
    "This looks like a bug in lerobot_inspect; please report it with the dataset's meta/info.json "
    "and the command you ran."
)


class LeRobotInspectError(Exception):
    """Root of every error raised on purpose by lerobot_inspect.

    Besides the message, an error carries where it happened and what to do as fields (`file`,
    `episode`, `camera`, `fix`, and a stable `code` where the audit has one), so the audit and the
    notebooks show them without parsing the text back."""

    def __init__(self, message: str = "", *, file: str | None = None, episode: int | None = None,
                 camera: str | None = None, fix: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.episode = episode
        self.camera = camera
        self.fix = fix
        self.code = code

    def __reduce__(self) -> tuple:
        # DataLoader workers and multiprocessing pickle errors: keep the fields, not only the text.
        return (type(self), self.args, self.__dict__)


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


# Options that count things (epochs, seeds, samples) stay far below this; a larger value is a bug
# in the caller (or a crafted state dict), and numpy would overflow on it later, far from the cause.
MAX_INT_OPTION = 2**62


def check_int(name: str, value: object, *, minimum: int = 0, maximum: int = MAX_INT_OPTION) -> int:
    """An integer option in [minimum, maximum] as a Python int; bools and floats are refused,
    because `True` or `2.0` for a count is always a slip."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value <= maximum:
        bound = f">= {minimum}" if maximum == MAX_INT_OPTION else f"in [{minimum}, {maximum}]"
        raise OptionError(f"{name}={value!r}; it must be an integer {bound}")
    return int(value)
