"""fsspec range reads with byte accounting and retries, sparse files for the decoder, a byte cache.

Public names are re-exported here; the submodules are implementation detail.
"""

from lerobot_inspect.io.byte_cache import ByteCache, CacheStats, LargeFetchWarning
from lerobot_inspect.io.fs import for_this_process, is_http, join, open_root
from lerobot_inspect.io.ranges import RangeReader, RangeStats
from lerobot_inspect.io.sparse import SparseFile

__all__ = [
    "ByteCache",
    "CacheStats",
    "LargeFetchWarning",
    "RangeReader",
    "RangeStats",
    "SparseFile",
    "for_this_process",
    "is_http",
    "join",
    "open_root",
]
