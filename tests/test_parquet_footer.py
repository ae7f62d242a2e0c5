"""The compact footer index reads every row group exactly as pyarrow's full footer does, and
refuses bytes that are not a Parquet footer: always with FooterFormatError, never an IndexError
of the walker, which indexes the bytes without checking each read."""

from __future__ import annotations

import contextlib
import io
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lerobot_inspect.io.parquet_footer import (
    FooterFormatError,
    read_compact_footer,
    scan_footer,
    single_row_group_footer,
)


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


@cache
def _footer() -> bytes:
    """The serialized FileMetaData of a small file with statistics, list and string columns."""
    table = pa.table({
        "index": np.arange(12),
        "observation.state": pa.array([[0.5, 1.5]] * 12, pa.list_(pa.float32())),
        "task": [f"task {k % 2}" for k in range(12)],
        "done": [k % 5 == 0 for k in range(12)],
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=5)
    data = buffer.getvalue()
    length = int.from_bytes(data[-8:-4], "little")
    return data[-8 - length:-8]


def test_a_footer_cut_anywhere_is_refused():
    footer = _footer()
    assert scan_footer(footer)[0].tolist() == [5, 5, 2]
    for cut in range(len(footer)):  # the top-level STOP byte is the last one: every prefix ends inside a value
        with pytest.raises(FooterFormatError, match="ends inside a value"):
            scan_footer(footer[:cut])


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.floats(0.5, 1))
def test_a_spoiled_footer_is_read_or_refused(changes, cut):
    footer = bytearray(_footer())
    for where, value in changes:
        footer[int(where * len(footer))] = value
    try:
        counts, spans, _ = scan_footer(bytes(footer[:int(cut * len(footer))]), footer_offset=100)
    except FooterFormatError:
        return
    assert len(counts) == len(spans) and (spans[:, 0] <= spans[:, 1]).all()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_random_bytes_are_read_or_refused(data):
    with contextlib.suppress(FooterFormatError):  # anything else (an IndexError) fails the test
        scan_footer(data)


def _nested_structs(levels: int, inner: bytes = b"\x15\x02") -> bytes:
    """A footer whose field 1 is `levels` structs, each field 1 of the one around it, the innermost
    holding `inner` (default an i32 field)."""
    return b"\x1c" * levels + inner + b"\x00" * levels + b"\x00"


def test_the_walker_keeps_the_thrift_limits():
    assert scan_footer(_nested_structs(64))[2] == ((1, 12, _nested_structs(64)[1:-1]),)
    assert scan_footer(_nested_structs(65, b""))[2][0][:2] == (1, 12)  # an empty struct holds nothing too deep
    with pytest.raises(FooterFormatError, match="nesting deeper than 64"):
        scan_footer(_nested_structs(65))
    lists = b"\x19" * 65 + b"\x15\x02\x00"  # field 1: lists of one list ... of one i32
    assert scan_footer(lists[1:])[2][0][:2] == (1, 9)
    with pytest.raises(FooterFormatError, match="nesting deeper than 64"):
        scan_footer(lists)
    assert scan_footer(b"\x15" + b"\x80" * 10 + b"\x01\x00")[2] == ((1, 5, b"\x80" * 10 + b"\x01"),)
    with pytest.raises(FooterFormatError, match="varint longer than 10 bytes"):
        scan_footer(b"\x15" + b"\x80" * 11 + b"\x01\x00")
    with pytest.raises(FooterFormatError, match="unknown Thrift type 13"):
        scan_footer(b"\x1d\x00")
    with pytest.raises(FooterFormatError, match="ends inside a value"):  # 2**35 bools of one byte each
        scan_footer(b"\x1a\xf1\x80\x80\x80\x80\x80\x01\x00")
    with pytest.raises(FooterFormatError, match="ends inside a value"):
        scan_footer(b"\x18\x05abc\x00")
    with pytest.raises(FooterFormatError, match="not a list of structs"):
        scan_footer(b"\x49\x15\x00")


def test_long_form_field_ids_and_every_value_type_are_skipped():
    values = (b"\x11"  # field 1: bool true (in the header)
              b"\x06\xd8\x04\xac\x02"  # field 300 (long form: zigzag id 600): i64 300
              b"\x13\x7f" b"\x17" + b"\x00" * 8 + b"\x18\x02hi"  # 301 byte, 302 double, 303 binary
              b"\x1a\x21\x01\x00"  # 304: set of 2 bools, a byte each
              b"\x1b\x01\x58\x04\x01z"  # 305: map {i32 2: binary "z"}
              b"\x19\x1c\x14\x06\x00")  # 306: list of one struct {1: i16 3}
    num_rows = b"\x06\x06\x0e"  # field 3 (back to a lower id: long form), i64 7; not kept
    groups = b"\x19\x2c" + b"\x36\x0e\x00" + b"\x36\xd8\x04\x15\x00\x00"  # field 4: row groups of 7 and 300 rows
    counts, spans, others = scan_footer(values + num_rows + groups + b"\x00", footer_offset=1000)
    assert counts.tolist() == [7, 300]
    start = 1000 + len(values) + len(num_rows) + 2
    assert spans.tolist() == [[start, start + 3], [start + 3, start + 9]]
    assert [(field, kind) for field, kind, _ in others] == [(1, 1), (300, 6), (301, 3), (302, 7), (303, 8), (304, 10),
                                                            (305, 11), (306, 9)]
    assert [value for _, _, value in others][2:] == [b"\x7f", b"\x00" * 8, b"\x02hi", b"\x21\x01\x00",
                                                     b"\x01\x58\x04\x01z", b"\x1c\x14\x06\x00"]


def test_a_map_claiming_more_entries_than_bytes_is_refused_at_once():
    # A spoiled footer whose field 5 is a bool/bool map of 2**35 entries in a few bytes used to loop
    # (a bool in a map takes a byte; it was read as taking none): refused as soon as it is read.
    footer = bytes([0x5B]) + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]) + bytes([0x11]) + b"\x01\x01" + b"\x00"
    with pytest.raises(FooterFormatError, match="ends inside a value"):
        scan_footer(footer)
