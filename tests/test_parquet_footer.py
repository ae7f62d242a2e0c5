"""The compact footer index reads every row group exactly as pyarrow's full footer does, and
refuses bytes that are not a Parquet footer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lerobot_inspect.io.parquet_footer import FooterFormatError, read_compact_footer, single_row_group_footer


def _reader(data: bytes):
    return lambda start, stop: data[start:stop]


@settings(max_examples=25, deadline=None)
@given(groups=st.lists(st.integers(1, 30), min_size=1, max_size=12), seed=st.integers(0, 2**16),
       statistics=st.booleans())
def test_each_row_group_reads_as_with_the_full_footer(tmp_path_factory, groups, seed, statistics):
    rng = np.random.default_rng(seed)
    rows = sum(groups)
    table = pa.table({
        "index": np.arange(rows),
        "observation.state": pa.array(list(rng.random((rows, 3)).astype(np.float32)), pa.list_(pa.float32(), 3)),
        "task": [f"task {k % 3}" for k in range(rows)],
        "done": rng.random(rows) > 0.5,
    })
    path = tmp_path_factory.mktemp("footer") / "data.parquet"
    with pq.ParquetWriter(path, table.schema, write_statistics=statistics) as writer:
        start = 0
        for size in groups:
            writer.write_table(table.slice(start, size))
            start += size
    data = path.read_bytes()
    footer = read_compact_footer(_reader(data), len(data), name="data.parquet")
    full = pq.ParquetFile(path)
    assert footer.row_counts.tolist() == groups
    assert footer.column_names == tuple(table.column_names)
    for k in range(len(groups)):
        start, stop = (int(v) for v in footer.spans[k])
        small = single_row_group_footer(footer, data[start:stop], int(footer.row_counts[k]))
        got = pq.ParquetFile(path, metadata=small).read_row_groups([0])
        assert got.equals(full.read_row_group(k)), f"row group {k}"


def test_not_a_footer_is_refused(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), path)
    data = path.read_bytes()
    with pytest.raises(FooterFormatError, match="magic"):
        read_compact_footer(_reader(data[:-1]), len(data) - 1, name="cut")
    spoiled = bytearray(data)
    length = int.from_bytes(data[-8:-4], "little")
    spoiled[-8 - length:-8] = b"\xff" * length
    with pytest.raises((FooterFormatError, OSError)):
        read_compact_footer(_reader(bytes(spoiled)), len(spoiled), name="spoiled")
