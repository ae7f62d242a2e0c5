"""fsspec range reads with byte accounting and retries, sparse files for the decoder, a byte cache.

Public names are re-exported here; the submodules are implementation detail.
"""

from lerobot_inspect.io.byte_cache import ByteCache, LargeFetchWarning
from lerobot_inspect.io.counters import Counters
from lerobot_inspect.io.fs import for_this_process, is_http, join, open_root
from lerobot_inspect.io.ranges import RangeReader
from lerobot_inspect.io.sparse import SparseFile

__all__ = [
    "ByteCache",
    "Counters",
    "LargeFetchWarning",
    "RangeReader",
    "SparseFile",
    "for_this_process",
    "is_http",
    "join",
    "open_root",
]
