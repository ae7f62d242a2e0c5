"""Seeded faults for a copy of a real fixture: each function breaks one thing the way it breaks in
the wild, so tests, the audit and the notebooks can show that it is caught and where.

Every function edits the dataset at `root` in place and returns what it touched (a relative path,
an episode) so a test can assert the finding names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "collapse_row_groups",
    "delete_file",
    "edit_episodes_column",
    "edit_info",
    "rewrite_data_column",
    "shift_video_timestamps",
    "swap_task_rows",
    "truncate_file",
]


def _episode_table(root: Path) -> tuple[Path, pa.Table]:
    path = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))[0]
    return path, pq.read_table(path)


def edit_info(root: str | Path, **changes: Any) -> str:
    """Overwrite keys of meta/info.json (a value of None deletes the key)."""
    path = Path(root) / "meta" / "info.json"
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info, indent=4))
    return "meta/info.json"


def truncate_file(root: str | Path, relative: str, *, keep_fraction: float = 0.5) -> str:
    """Cut a file short, as an interrupted download leaves it."""
    path = Path(root) / relative
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return relative


def delete_file(root: str | Path, relative: str) -> str:
    (Path(root) / relative).unlink()
    return relative


def edit_episodes_column(root: str | Path, column: str, episode: int, value: Any) -> str:
    """Set one cell of meta/episodes (assumes the episodes table fits in its first file)."""
    path, table = _episode_table(Path(root))
    values = table.column(column).to_pylist()
    values[episode] = value
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
    pq.write_table(table, path, row_group_size=10)
    return str(path.relative_to(root))


def shift_video_timestamps(root: str | Path, camera: str, episode: int, *, frames: int = 1) -> None:
    """Move an episode's from/to_timestamp by whole frames: the decoder returns a neighbour's frames
    within tolerance, which is the silent failure the audit and the frames notebook must catch."""
    fps = json.loads((Path(root) / "meta" / "info.json").read_text())["fps"]
    path, table = _episode_table(Path(root))
    for side in ("from", "to"):
        column = f"videos/{camera}/{side}_timestamp"
        values = table.column(column).to_pylist()
        values[episode] = values[episode] + frames / fps
        index = table.column_names.index(column)
        table = table.set_column(index, table.schema.field(index), pa.array(values, type=pa.float64()))
    pq.write_table(table, path, row_group_size=10)


def _data_file_of(root: Path, episode: int) -> tuple[str, pa.Table, list[int]]:
    info = json.loads((root / "meta" / "info.json").read_text())
    _, episodes = _episode_table(root)
    chunk = episodes.column("data/chunk_index")[episode].as_py()
    file = episodes.column("data/file_index")[episode].as_py()
    relative = info["data_path"].format(chunk_index=chunk, file_index=file)
    parquet = pq.ParquetFile(root / relative)
    sizes = [parquet.metadata.row_group(k).num_rows for k in range(parquet.metadata.num_row_groups)]
    return relative, parquet.read(), sizes


def _write_row_groups(path: Path, table: pa.Table, sizes: list[int]) -> None:
    with pq.ParquetWriter(path, table.schema, compression="snappy") as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size))
            start += size


def rewrite_data_column(root: str | Path, episode: int, column: str, edit: Any) -> str:
    """Apply `edit(values: np.ndarray) -> np.ndarray` to one column of one episode's rows, keeping one
    row group per episode; returns the data file's relative path."""
    root = Path(root)
    relative, table, sizes = _data_file_of(root, episode)
    rows = table.column("episode_index").to_numpy() == episode
    values = table.column(column).to_numpy().copy()
    values[rows] = edit(values[rows])
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
    _write_row_groups(root / relative, table, sizes)
    return relative


def collapse_row_groups(root: str | Path, episode: int = 0) -> str:
    """Rewrite the data file holding `episode` as a single row group (a non-LeRobot writer)."""
    root = Path(root)
    relative, table, _ = _data_file_of(root, episode)
    pq.write_table(table, root / relative, row_group_size=max(1, table.num_rows))
    return relative


def swap_task_rows(root: str | Path) -> str:
    """Reverse meta/tasks.parquet rows, keeping task_index with its task: lookups by row go wrong."""
    path = Path(root) / "meta" / "tasks.parquet"
    table = pq.read_table(path)
    order = np.arange(table.num_rows)[::-1].copy()
    pq.write_table(table.take(pa.array(order)), path)
    return "meta/tasks.parquet"


# ---------------------------------------------------------------------- MP4-level faults (appended)
def _top_level_boxes(data: bytes) -> list[tuple[str, int, int]]:
    """(type, start, stop) of each top-level box; enough for the files our generator writes."""
    import struct

    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, raw = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        elif size == 0:
            size = len(data) - pos
        boxes.append((raw.decode("latin-1"), pos, pos + size))
        pos += size
    return boxes


def _find_box(data: bytes, path: str) -> tuple[int, int]:
    """(start, stop) of the first box at a slash path such as "moov/trak/mdia/minf/stbl/stsz"."""
    import struct

    containers = {"moov", "trak", "mdia", "minf", "stbl", "edts", "dinf"}
    start, stop = 0, len(data)
    for depth, name in enumerate(path.split("/")):
        pos = start + (8 if depth else 0)
        while pos + 8 <= stop:
            size, raw = struct.unpack_from(">I4s", data, pos)
            if raw.decode("latin-1") == name:
                start, stop = pos, pos + size
                break
            pos += size
        else:
            raise ValueError(f"no box {name!r} on the path {path!r}")
        if name not in containers and depth < len(path.split("/")) - 1:
            raise ValueError(f"{name!r} is not a container box")
    return start, stop


def truncate_in_box(root: str | Path, relative: str, box: str, *, keep_fraction: float = 0.5) -> int:
    """Cut an MP4 inside one of its top-level boxes ("moov" or "mdat"): an interrupted download whose
    end landed in the header or in the frame data. Returns the new size in bytes."""
    path = Path(root) / relative
    data = path.read_bytes()
    matches = [(start, stop) for kind, start, stop in _top_level_boxes(data) if kind == box]
    if not matches:
        raise ValueError(f"{relative} has no top-level {box!r} box")
    start, stop = matches[0]
    cut = start + max(16, int((stop - start) * keep_fraction))
    path.write_bytes(data[:cut])
    return cut


def set_box_size(root: str | Path, relative: str, box_path: str, size: int) -> int:
    """Overwrite the 32-bit size field of a nested box (a corrupt sample table, as a broken writer or
    a bit flip leaves it). Returns the box's byte offset."""
    import struct

    path = Path(root) / relative
    data = bytearray(path.read_bytes())
    start, _ = _find_box(bytes(data), box_path)
    struct.pack_into(">I", data, start, size)
    path.write_bytes(bytes(data))
    return start


def fragment_mp4(root: str | Path, relative: str) -> str:
    """Remux an MP4 in place (stream copy) as a fragmented MP4 (`movflags=frag_keyframe+empty_moov`),
    as a live recorder or a DASH packager writes it: the sample tables move out of moov into moofs."""
    import io

    import av

    path = Path(root) / relative
    source = av.open(io.BytesIO(path.read_bytes()))
    try:
        with av.open(str(path), "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}) as out:
            template = source.streams.video[0]
            stream = out.add_stream_from_template(template, opaque=True)
            for packet in source.demux(template):
                if packet.dts is None:
                    continue
                packet.stream = stream
                out.mux(packet)
    finally:
        source.close()
    return relative


def reencode_at_fps(root: str | Path, relative: str, *, keep_every: int = 2) -> float:
    """Re-encode an MP4 keeping every `keep_every`-th frame at its original time: the camera really
    ran at fps / keep_every while the data ran at fps. Returns the new frame rate."""
    from fractions import Fraction

    import av

    path = Path(root) / relative
    with av.open(str(path)) as source:
        video = source.streams.video[0]
        time_base, rate = video.time_base, video.average_rate
        decoded = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in source.decode(video)]
    ticks = int(1 / (rate * time_base))
    kept = [(pts, image) for pts, image in decoded if (pts // ticks) % keep_every == 0]
    new_rate = Fraction(rate) / keep_every
    height, width = kept[0][1].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=new_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.options = {"crf": "18", "x264-params": "bframes=0", "threads": "1"}
        for pts, image in kept:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return float(new_rate)


__all__ += ["fragment_mp4", "reencode_at_fps", "set_box_size", "truncate_in_box"]


def drop_last_frames(root: str | Path, relative: str, count: int) -> str:
    """Remux an MP4 (stream copy) without its last `count` samples: a file that lost the end of its
    last episode while its header stayed consistent (an encode that died, a bad concatenation)."""
    import av

    path = Path(root) / relative
    tmp = path.with_name(path.name + ".tmp")
    with av.open(str(path)) as source:
        template = source.streams.video[0]
        packets = sorted((p for p in source.demux(template) if p.dts is not None), key=lambda p: p.dts)
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream_from_template(template, opaque=True)
            for packet in packets[:-count]:
                packet.stream = stream
                out.mux(packet)
    tmp.replace(path)
    return relative


__all__ += ["drop_last_frames"]
