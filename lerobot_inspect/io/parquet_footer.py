"""A compact index of a data Parquet file's footer: what reading one episode's row group needs.

pyarrow's decoded `FileMetaData` of a file with 10,000 row groups (one per episode, LeRobot's
layout) takes ~100 MB, and a reader cannot read a row group without a FileMetaData. The serialized
footer is a Thrift compact-protocol struct whose field 4 is the list of row groups; this module
walks it once (`scan_footer`, pure) and keeps, per row group, its row count and the byte span of
its serialized struct in the file. Reading episode k then fetches only that span, splices it
into a one-row-group footer (the other top-level fields copied from the original) and hands
pyarrow that small FileMetaData: column chunk offsets stay those of the original file, so
`ParquetFile(path, metadata=small).read_row_groups([0])` reads exactly the original chunks.
Memory per file: 16 bytes per row group plus the footer's non-row-group fields (the schema).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

__all__ = ["CompactFooter", "FooterFormatError", "read_compact_footer", "scan_footer", "single_row_group_footer"]

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)


class FooterFormatError(ValueError):
    """The footer bytes are not the Thrift compact struct Parquet writes."""


class _Reader:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise FooterFormatError("footer ends inside a value")
        value = self.data[self.position]
        self.position += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise FooterFormatError("varint longer than 10 bytes")

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 64:
            raise FooterFormatError("nesting deeper than 64")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _BYTE:
            self.position += 1
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self.position += 8
        elif kind == _BINARY:
            length = self.varint()  # read before adding: `position += varint()` adds to the stale position
            self.position += length
        elif kind in (_LIST, _SET):
            size, element = self.list_header()
            for _ in range(size):
                if element in (_TRUE, _FALSE):
                    self.position += 1
                else:
                    self.skip(element, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4, depth + 1)
                    self.skip(types & 0x0F, depth + 1)
        elif kind == _STRUCT:
            field = 0
            while True:
                field, sub = self.field_header(field)
                if sub == _STOP:
                    break
                self.skip(sub, depth + 1)
        else:
            raise FooterFormatError(f"unknown Thrift type {kind}")
        if self.position > len(self.data):
            raise FooterFormatError("footer ends inside a value")

    def field_header(self, previous: int) -> tuple[int, int]:
        header = self.byte()
        kind = header & 0x0F
        if kind == _STOP:
            return previous, _STOP
        delta = header >> 4
        return (previous + delta if delta else self.zigzag()), kind

    def list_header(self) -> tuple[int, int]:
        header = self.byte()
        size = header >> 4
        if size == 15:
            size = self.varint()
        return size, header & 0x0F


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        if value < 0x80:
            out.append(value)
            return bytes(out)
        out.append((value & 0x7F) | 0x80)
        value >>= 7


def _field(previous: int, field: int, kind: int) -> bytes:
    delta = field - previous
    if 0 < delta <= 15:
        return bytes([(delta << 4) | kind])
    return bytes([kind]) + _varint((field << 1) ^ (field >> 63))


@dataclass(frozen=True)
class CompactFooter:
    """Row counts and serialized-row-group spans of one Parquet file's footer.

    row_counts      (n,) rows per row group.
    spans           (n, 2) [start, stop) of each serialized RowGroup struct, in file offsets.
    other_fields    [(field id, type, raw value bytes)] of the FileMetaData fields except num_rows
                    and row_groups (schema, version, key-value metadata, created_by, ...).
    column_names    the Arrow schema's top-level names (pyarrow's view of the schema).
    """

    row_counts: np.ndarray
    spans: np.ndarray
    other_fields: tuple[tuple[int, int, bytes], ...]
    column_names: tuple[str, ...]

    @property
    def num_row_groups(self) -> int:
        return len(self.row_counts)


def scan_footer(footer: bytes, *, footer_offset: int = 0) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(row counts, row-group spans shifted by `footer_offset`, other top-level fields) of a
    serialized FileMetaData. Pure: bytes in, arrays out."""
    reader = _Reader(footer)
    counts: list[int] = []
    spans: list[tuple[int, int]] = []
    others: list[tuple[int, int, bytes]] = []
    field = 0
    while True:
        field, kind = reader.field_header(field)
        if kind == _STOP:
            break
        start = reader.position
        if field == 4 and kind == _LIST:
            size, element = reader.list_header()
            if element != _STRUCT:
                raise FooterFormatError("row_groups is not a list of structs")
            for _ in range(size):
                begin = reader.position
                rows, sub = None, 0
                while True:
                    sub, sub_kind = reader.field_header(sub)
                    if sub_kind == _STOP:
                        break
                    if sub == 3 and sub_kind == _I64:
                        rows = reader.zigzag()
                    else:
                        reader.skip(sub_kind)
                if rows is None:
                    raise FooterFormatError("a row group has no num_rows")
                counts.append(rows)
                spans.append((begin + footer_offset, reader.position + footer_offset))
        else:
            reader.skip(kind)
            if field != 3:
                others.append((field, kind, bytes(footer[start:reader.position])))
    return (np.asarray(counts, dtype=np.int64), np.asarray(spans, dtype=np.int64).reshape(-1, 2),
            tuple(others))


MAX_FOOTER_BYTES = 512 << 20


def read_compact_footer(read: Callable[[int, int], bytes], size: int, *, name: str) -> CompactFooter:
    """The compact footer of a Parquet file of `size` bytes; `read(start, stop)` returns its bytes."""
    if size < 12:
        raise FooterFormatError(f"{name}: {size} bytes is too short for a Parquet file")
    tail = read(size - 8, size)
    if tail[4:] != b"PAR1":
        raise FooterFormatError(f"{name}: no Parquet magic at the end of the file")
    length = struct.unpack("<I", tail[:4])[0]
    if length > min(size - 12, MAX_FOOTER_BYTES):
        raise FooterFormatError(f"{name}: footer length {length} does not fit the file")
    start = size - 8 - length
    counts, spans, others = scan_footer(read(start, size - 8), footer_offset=start)
    compact = CompactFooter(counts, spans, others, ())
    empty = single_row_group_footer(compact, None, 0)
    return CompactFooter(counts, spans, others, tuple(empty.schema.to_arrow_schema().names))


def single_row_group_footer(footer: CompactFooter, row_group: bytes | None, num_rows: int) -> pq.FileMetaData:
    """A FileMetaData holding one row group (its serialized struct; None: no row group), the other
    fields as in the file."""
    out = bytearray()
    previous = 0
    groups = bytes([(1 << 4) | _STRUCT]) + row_group if row_group is not None else bytes([_STRUCT])
    fields = sorted([*footer.other_fields, (3, _I64, _varint((num_rows << 1) ^ (num_rows >> 63))),
                     (4, _LIST, groups)])
    for field, kind, value in fields:
        out += _field(previous, field, kind) + value
        previous = field
    out.append(_STOP)
    blob = b"PAR1" + bytes(out) + struct.pack("<I", len(out)) + b"PAR1"
    return pq.read_metadata(io.BytesIO(blob))
