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

__all__ = ["CompactFooter", "FooterFormatError", "read_compact_footer", "row_groups_footer", "scan_footer",
           "single_row_group_footer"]

_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)


class FooterFormatError(ValueError):
    """The footer bytes are not the Thrift compact struct Parquet writes."""


_MAX_DEPTH = 64


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after) of the unsigned varint at `pos`; at most 11 bytes are read."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise FooterFormatError("varint longer than 10 bytes")


def _varint_end(data: bytes, pos: int) -> int:
    """The position after the varint at `pos`, without building its value (skipped numbers)."""
    end = pos
    while data[end] >= 0x80:
        end += 1
        if end - pos > 10:
            raise FooterFormatError("varint longer than 10 bytes")
    return end + 1


def _zigzag(data: bytes, pos: int) -> tuple[int, int]:
    value, pos = _read_varint(data, pos)
    return (value >> 1) ^ -(value & 1), pos


def _field_header(data: bytes, pos: int, previous: int) -> tuple[int, int, int]:
    """(field id, type, position after) of a struct field header; type _STOP ends the struct."""
    header = data[pos]
    kind = header & 0x0F
    if kind == _STOP:
        return previous, _STOP, pos + 1
    delta = header >> 4
    if delta:
        return previous + delta, kind, pos + 1
    field, pos = _zigzag(data, pos + 1)
    return field, kind, pos


def _list_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(size, element type, position after) of a list or set header."""
    header = data[pos]
    size = header >> 4
    if size == 15:
        size, pos = _read_varint(data, pos + 1)
        return size, header & 0x0F, pos
    return size, header & 0x0F, pos + 1


def _skip(data: bytes, pos: int, kind: int, depth: int) -> int:
    """The position after the value of Thrift type `kind` at `pos`, `depth` containers deep.

    Module functions on locals, with structs and lists in their own functions that call each other
    directly and the common values (varints, binaries) inlined: a 10,000-row-group footer holds
    ~6 M values, and a method call per byte made the walk take seconds. Reading past the end raises
    IndexError (bytes indexing), which `scan_footer` reports as FooterFormatError. A skip that only
    moves `pos` past the end (binary, byte, double, bool list) fails at the next read or at the end
    checks here and in `_skip_list`: the same error, at the same value, as the per-byte reader gave.
    """
    if depth > _MAX_DEPTH:
        raise FooterFormatError(f"nesting deeper than {_MAX_DEPTH}")
    if kind == _STRUCT:
        return _skip_struct(data, pos, depth)
    if kind in (_LIST, _SET):
        return _skip_list(data, pos, depth)
    if _TRUE <= kind <= _FALSE:  # a struct field's bool is in its header
        return pos
    if _I16 <= kind <= _I64:
        return _varint_end(data, pos)
    if kind == _BINARY:
        length, pos = _read_varint(data, pos)
        pos += length
    elif kind == _BYTE:
        pos += 1
    elif kind == _DOUBLE:
        pos += 8
    elif kind == _MAP:
        size, pos = _read_varint(data, pos)
        if size:
            types = data[pos]
            pos += 1
            if size > len(data) - pos:  # every entry takes at least a byte: refuse, do not loop on it
                raise FooterFormatError("footer ends inside a value")
            for _ in range(size):
                # In a map a bool key or value is a byte (unlike a struct field, whose header holds it).
                key_kind, value_kind = types >> 4, types & 0x0F
                pos = pos + 1 if _TRUE <= key_kind <= _FALSE else _skip(data, pos, key_kind, depth + 1)
                pos = pos + 1 if _TRUE <= value_kind <= _FALSE else _skip(data, pos, value_kind, depth + 1)
    else:
        raise FooterFormatError(f"unknown Thrift type {kind}")
    if pos > len(data):
        raise FooterFormatError("footer ends inside a value")
    return pos


def _skip_struct(data: bytes, pos: int, depth: int) -> int:
    """The position after the struct at `pos`; its fields are `depth + 1` deep."""
    if depth == _MAX_DEPTH:  # any field would nest too deep
        _, kind, pos = _field_header(data, pos, 0)
        if kind == _STOP:
            return pos
        raise FooterFormatError(f"nesting deeper than {_MAX_DEPTH}")
    while True:
        header = data[pos]
        pos += 1
        kind = header & 0x0F
        if kind == _STOP:
            return pos
        if header < 0x10:  # field-id delta 0: the id follows as a zigzag varint
            pos = _varint_end(data, pos)
        if _I16 <= kind <= _I64:
            pos = pos + 1 if data[pos] < 0x80 else _varint_end(data, pos)
        elif kind == _BINARY:
            length = data[pos]
            if length < 0x80:
                pos += 1 + length
            else:
                length, pos = _read_varint(data, pos)
                pos += length
        elif kind == _STRUCT:
            pos = _skip_struct(data, pos, depth + 1)
        elif kind == _LIST:
            pos = _skip_list(data, pos, depth + 1)
        elif kind > _FALSE:  # bools carry their value in the field header
            pos = _skip(data, pos, kind, depth + 1)


def _skip_list(data: bytes, pos: int, depth: int) -> int:
    """The position after the list or set at `pos`; its elements are `depth + 1` deep."""
    header = data[pos]
    pos += 1
    size = header >> 4
    if size == 15:
        size, pos = _read_varint(data, pos)
    kind = header & 0x0F
    if _TRUE <= kind <= _FALSE:  # in a list a bool is one byte
        pos += size
    elif not size:
        return pos
    elif depth == _MAX_DEPTH:
        raise FooterFormatError(f"nesting deeper than {_MAX_DEPTH}")
    elif _I16 <= kind <= _I64:
        for _ in range(size):
            pos = pos + 1 if data[pos] < 0x80 else _varint_end(data, pos)
    elif kind == _BINARY:
        for _ in range(size):
            length = data[pos]
            if length < 0x80:
                pos += 1 + length
            else:
                length, pos = _read_varint(data, pos)
                pos += length
    elif kind == _STRUCT:
        for _ in range(size):
            pos = _skip_struct(data, pos, depth + 1)
    else:
        for _ in range(size):
            pos = _skip(data, pos, kind, depth + 1)
    if pos > len(data):
        raise FooterFormatError("footer ends inside a value")
    return pos


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
    try:
        counts, spans, others = _scan(footer, footer_offset)
    except IndexError:  # the walk indexes past the end of the bytes instead of checking each read
        raise FooterFormatError("footer ends inside a value") from None
    return (np.asarray(counts, dtype=np.int64), np.asarray(spans, dtype=np.int64).reshape(-1, 2),
            tuple(others))


def _scan(data: bytes, footer_offset: int) -> tuple[list[int], list[tuple[int, int]], list[tuple[int, int, bytes]]]:
    counts: list[int] = []
    spans: list[tuple[int, int]] = []
    others: list[tuple[int, int, bytes]] = []
    pos = field = 0
    while True:
        field, kind, pos = _field_header(data, pos, field)
        if kind == _STOP:
            break
        start = pos
        if field == 4 and kind == _LIST:
            size, element, pos = _list_header(data, pos)
            if element != _STRUCT:
                raise FooterFormatError("row_groups is not a list of structs")
            for _ in range(size):
                begin = pos
                rows, sub = None, 0
                while True:
                    sub, sub_kind, pos = _field_header(data, pos, sub)
                    if sub_kind == _STOP:
                        break
                    if sub == 3 and sub_kind == _I64:
                        rows, pos = _zigzag(data, pos)
                    else:
                        pos = _skip(data, pos, sub_kind, 0)
                if rows is None:
                    raise FooterFormatError("a row group has no num_rows")
                counts.append(rows)
                spans.append((begin + footer_offset, pos + footer_offset))
        else:
            pos = _skip(data, pos, kind, 0)
            if field != 3:
                others.append((field, kind, bytes(data[start:pos])))
    return counts, spans, others


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
    return row_groups_footer(footer, row_group or b"", 0 if row_group is None else 1, num_rows)


def row_groups_footer(footer: CompactFooter, structs: bytes, count: int, num_rows: int) -> pq.FileMetaData:
    """A FileMetaData holding `count` consecutive row groups, `structs` being their serialized
    structs back to back (one read of the footer from the first's start to the last's stop), the
    other fields as in the file: a reader of a slice of a big file decodes only that slice's footer."""
    header = bytes([(count << 4) | _STRUCT]) if count < 15 else bytes([0xF0 | _STRUCT]) + _varint(count)
    out = bytearray()
    previous = 0
    fields = sorted([*footer.other_fields, (3, _I64, _varint((num_rows << 1) ^ (num_rows >> 63))),
                     (4, _LIST, header + structs)])
    for field, kind, value in fields:
        out += _field(previous, field, kind) + value
        previous = field
    out.append(_STOP)
    blob = b"PAR1" + bytes(out) + struct.pack("<I", len(out)) + b"PAR1"
    return pq.read_metadata(io.BytesIO(blob))
