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

from lerobot_inspect.probes.frames import shift_video_span

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


def shift_video_timestamps(root: str | Path, camera: str, episode: int, *, frames: int = 1) -> str:
    """Move an episode's from/to_timestamp by whole frames: the decoder returns a neighbour's frames
    within tolerance, which is the silent failure the audit and the frames notebook must catch.
    The library's own `shift_video_span` (the demo seeds the same fault with it) does the edit."""
    return shift_video_span(root, camera, episode, frames=frames)


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


# ---------------------------------------------------------------------- hostile inputs (appended)
def inflate_sample_count(root: str | Path, relative: str, *, pad_bytes: int = 16 << 20) -> int:
    """Make an MP4's sample table claim one 1-byte sample per byte of the file, with tables that stay
    consistent with each other (constant-size stsz, one-entry stts/ctts/stsc/stco): a parser that
    expands run lengths allocates tens of bytes per claimed sample. `pad_bytes` of a `free` box are
    appended so the claim fits the file. Returns the number of samples claimed."""
    import struct

    path = Path(root) / relative
    data = bytearray(path.read_bytes())
    data += struct.pack(">I4s", pad_bytes + 8, b"free") + bytes(pad_bytes)
    mdat = next(start for kind, start, _ in _top_level_boxes(bytes(data)) if kind == "mdat")
    first = mdat + 8
    count = len(data) - first
    stbl = "moov/trak/mdia/minf/stbl"
    start, _ = _find_box(bytes(data), f"{stbl}/stsz")
    struct.pack_into(">II", data, start + 12, 1, count)  # constant size 1, `count` samples
    start, _ = _find_box(bytes(data), f"{stbl}/stts")
    (delta,) = struct.unpack_from(">I", data, start + 20)
    struct.pack_into(">III", data, start + 12, 1, count, delta)
    try:
        start, _ = _find_box(bytes(data), f"{stbl}/ctts")
        struct.pack_into(">III", data, start + 12, 1, count, 0)
    except ValueError:
        pass
    start, _ = _find_box(bytes(data), f"{stbl}/stsc")
    struct.pack_into(">IIII", data, start + 12, 1, 1, count, 1)
    try:
        start, _ = _find_box(bytes(data), f"{stbl}/stco")
        struct.pack_into(">II", data, start + 12, 1, first)
    except ValueError:
        start, _ = _find_box(bytes(data), f"{stbl}/co64")
        struct.pack_into(">IQ", data, start + 12, 1, first)
    path.write_bytes(bytes(data))
    return count


def append_empty_boxes(root: str | Path, relative: str, *, count: int = 3000,
                       box_size: int = (256 << 10) + 16) -> int:
    """Append `count` top-level `free` boxes of `box_size` bytes of zeros, written sparsely (the file
    is large, the disk use is not): a box walk that keeps what it read for each header holds
    count x its read size. Returns the new file size."""
    import struct

    path = Path(root) / relative
    with open(path, "r+b") as handle:
        end = handle.seek(0, 2)
        for k in range(count):
            handle.seek(end + k * box_size)
            handle.write(struct.pack(">I4s", box_size, b"free"))
        handle.truncate(end + count * box_size)
    return end + count * box_size


def parquet_with_empty_row_groups(path: str | Path, table: Any, *, count: int = 100_000) -> str:
    """Rewrite a Parquet file as its rows followed by `count` empty row groups: a small file whose
    footer costs a reader hundreds of MB to describe."""
    path = Path(path)
    empty = table.slice(0, 0)
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.write_table(table)
        for _ in range(count):
            writer.write_table(empty)
    return str(path)


def huge_json(path: str | Path, *, size: int = 400 << 20) -> str:
    """A JSON object of `size` bytes (one long string value), written without holding it in memory."""
    path = Path(path)
    with open(path, "w") as handle:
        handle.write('{"codebase_version": "v3.0", "padding": "')
        chunk = "x" * (1 << 20)
        for _ in range(size >> 20):
            handle.write(chunk)
        handle.write('"}')
    return str(path)


__all__ += ["append_empty_boxes", "huge_json", "inflate_sample_count", "parquet_with_empty_row_groups"]


# ---------------------------------------------------------------------- content faults (appended)
def _vector_column(table: pa.Table, column: str) -> tuple[np.ndarray, pa.DataType]:
    """A scalar or fixed-size-list column as a (rows, dims) float64 array, and its Arrow type."""
    kind = table.schema.field(column).type
    chunked = table.column(column).combine_chunks()
    if pa.types.is_fixed_size_list(kind):
        flat = chunked.values.slice(chunked.offset * kind.list_size, len(chunked) * kind.list_size)
        return flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(chunked), kind.list_size), kind
    return chunked.to_numpy(zero_copy_only=False).astype(np.float64)[:, None], kind


def _vector_array(values: np.ndarray, kind: pa.DataType, null_rows: np.ndarray | None = None) -> pa.Array:
    if pa.types.is_fixed_size_list(kind):
        child = pa.array(values.reshape(-1).astype(kind.value_type.to_pandas_dtype()), type=kind.value_type)
        mask = None if null_rows is None else pa.array(null_rows)
        return pa.FixedSizeListArray.from_arrays(child, kind.list_size, mask=mask)
    return pa.array(values[:, 0].astype(kind.to_pandas_dtype()), type=kind,
                    mask=None if null_rows is None else null_rows)


def edit_rows(root: str | Path, episode: int, column: str, edit: Any, *, null_frames: Any = None,
              recompute_stats: bool = False) -> str:
    """Apply `edit(values: (frames, dims) float64) -> same` to one episode's rows of a numeric
    column (scalar or fixed-size list), optionally turning the rows at `null_frames` into nulls.
    `recompute_stats=True` then rewrites the episode stats and stats.json from the data, as LeRobot's
    writer would have computed them from glitched rows. Returns the data file's relative path."""
    root = Path(root)
    relative, table, sizes = _data_file_of(root, episode)
    rows = np.flatnonzero(table.column("episode_index").to_numpy() == episode)
    values, kind = _vector_column(table, column)
    values[rows] = edit(values[rows].copy())
    null_rows = None
    if null_frames is not None:
        null_rows = np.zeros(table.num_rows, dtype=bool)
        null_rows[rows[np.asarray(null_frames, dtype=np.int64)]] = True
    index = table.column_names.index(column)
    table = table.set_column(index, table.schema.field(index), _vector_array(values, kind, null_rows))
    _write_row_groups(root / relative, table, sizes)
    if recompute_stats:
        recompute_numeric_stats(root)
    return relative


def recompute_numeric_stats(root: str | Path) -> None:
    """Rewrite the stats/<feature>/* columns of meta/episodes and meta/stats.json for every numeric
    non-camera feature from the data rows (the generator's formulas), leaving camera stats alone."""
    from data_fixtures.generator import _aggregate_stats, _feature_stats, _jsonable

    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    numeric = [name for name, f in info["features"].items() if f["dtype"] not in ("video", "image", "string")]
    data = pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet")))
    path, episodes = _episode_table(root)
    starts = episodes.column("dataset_from_index").to_numpy()
    stops = episodes.column("dataset_to_index").to_numpy()
    stats_json = json.loads((root / "meta" / "stats.json").read_text())
    for name in numeric:
        values, _ = _vector_column(data, name)
        if info["features"][name]["dtype"] == "bool":
            values = values.astype(bool)
        per_episode = [_feature_stats(values[int(a):int(b)], 0, False) for a, b in zip(starts, stops, strict=True)]
        for stat in per_episode[0]:
            column = f"stats/{name}/{stat}"
            if column not in episodes.column_names:
                continue
            index = episodes.column_names.index(column)
            field = episodes.schema.field(index)
            episodes = episodes.set_column(index, field, pa.array([s[stat].tolist() for s in per_episode],
                                                                  type=field.type))
        stats_json[name] = _jsonable(_aggregate_stats(per_episode))
    pq.write_table(episodes, path, row_group_size=10)
    (root / "meta" / "stats.json").write_text(json.dumps(stats_json, indent=4))


def spike_value(root: str | Path, episode: int, column: str, frame: int, dim: int, *, by: float = 1e5) -> str:
    """One frame of one dimension jumps by `by` and comes back (a sensor glitch); stats follow the
    rows, as the writer computed them."""
    def edit(values: np.ndarray) -> np.ndarray:
        values[frame, dim] += by
        return values

    return edit_rows(root, episode, column, edit, recompute_stats=True)


def freeze_values(root: str | Path, episode: int, column: str, start: int, stop: int) -> str:
    """Frames [start, stop) of an episode repeat frame `start`'s value in every dimension (a stalled
    stream); stats follow the rows."""
    def edit(values: np.ndarray) -> np.ndarray:
        values[start:stop] = values[start]
        return values

    return edit_rows(root, episode, column, edit, recompute_stats=True)


def swap_episode_values(root: str | Path, a: int, b: int, columns: list[str]) -> str:
    """Swap the values of `columns` between the first min(len a, len b) frames of episodes a and b,
    in one data file, leaving the id columns (index, episode_index, frame_index, timestamp) and the
    stored stats as they were: a writer that mixed up two episodes' buffers."""
    root = Path(root)
    relative, table, sizes = _data_file_of(root, a)
    if _data_file_of(root, b)[0] != relative:
        raise ValueError(f"episodes {a} and {b} are in different data files")
    episode = table.column("episode_index").to_numpy()
    rows_a, rows_b = np.flatnonzero(episode == a), np.flatnonzero(episode == b)
    n = min(len(rows_a), len(rows_b))
    for column in columns:
        values, kind = _vector_column(table, column)
        values[rows_a[:n]], values[rows_b[:n]] = values[rows_b[:n]].copy(), values[rows_a[:n]].copy()
        index = table.column_names.index(column)
        table = table.set_column(index, table.schema.field(index), _vector_array(values, kind))
    _write_row_groups(root / relative, table, sizes)
    return relative


def edit_stats_json(root: str | Path, edit: Any) -> str:
    """Replace meta/stats.json's text with `edit(text)` (None deletes the file)."""
    path = Path(root) / "meta" / "stats.json"
    text = edit(path.read_text())
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    return "meta/stats.json"


def edit_feature(root: str | Path, feature: str, **changes: Any) -> str:
    """Change keys of one feature in meta/info.json; keys starting with `video.` go into its info."""
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    spec = info["features"][feature]
    for key, value in changes.items():
        (spec.setdefault("info", {}) if key.startswith("video.") else spec)[key] = value
    return edit_info(root, features=info["features"])


def swap_episode_ranges(root: str | Path, a: int, b: int) -> str:
    """Swap dataset_from_index / dataset_to_index between two episodes of meta/episodes (lengths
    stay): each now points at the other's rows."""
    path, table = _episode_table(Path(root))
    for column in ("dataset_from_index", "dataset_to_index"):
        values = table.column(column).to_pylist()
        values[a], values[b] = values[b], values[a]
        index = table.column_names.index(column)
        field = table.schema.field(index)
        table = table.set_column(index, field, pa.array(values, type=field.type))
    pq.write_table(table, path, row_group_size=10)
    return str(path.relative_to(root))


def freeze_video_frames(root: str | Path, camera: str, episode: int, start: int, count: int) -> str:
    """Re-encode the MP4 holding `episode` with frames [start, start + count) of that episode all
    showing frame `start` (a camera that stalled); every episode of the file is re-encoded with the
    file's codec, GOP and fps, so only the pixels of that span change. Returns the MP4's path."""
    import av

    from data_fixtures.generator import _encode_episode_mp4, _write_video_file

    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    fps, spec = info["fps"], info["features"][camera]["info"]
    _, episodes = _episode_table(root)
    chunk = episodes.column(f"videos/{camera}/chunk_index").to_pylist()
    file = episodes.column(f"videos/{camera}/file_index").to_pylist()
    relative = info["video_path"].format(video_key=camera, chunk_index=chunk[episode], file_index=file[episode])
    in_file = [e for e in range(episodes.num_rows) if (chunk[e], file[e]) == (chunk[episode], file[episode])]
    lengths = [int(episodes.column("length")[e].as_py()) for e in in_file]
    with av.open(str(root / relative)) as source:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in source.decode(source.streams.video[0])])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    k = in_file.index(episode)
    first = int(bounds[k]) + start
    frames[first:first + count] = frames[first]
    codec = "h264" if spec.get("video.codec") == "h264" else "av1"
    mp4s = [_encode_episode_mp4(frames[int(bounds[i]):int(bounds[i + 1])], codec=codec, fps=fps,
                                gop=int(spec.get("video.g", 2)), crf=int(spec.get("video.crf", 30)))
            for i in range(len(in_file))]
    _write_video_file(str(root / relative), mp4s, lengths)
    return relative


__all__ += ["edit_feature", "edit_rows", "edit_stats_json", "freeze_values", "freeze_video_frames",
            "recompute_numeric_stats", "spike_value", "swap_episode_ranges", "swap_episode_values"]
