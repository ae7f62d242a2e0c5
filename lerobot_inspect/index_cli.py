"""`lerobot-inspect index build ROOT` and `lerobot-inspect index show ROOT`.

`build` parses every MP4 header of a dataset (local or remote) through range reads and writes
meta/byte_index/ next to it, so every later remote reader starts from the saved tables instead of
re-parsing headers. It is resumable: finished files are kept in a local scratch directory until the
whole build succeeds, so a rerun after a network failure only parses what is missing.

`show` prints what the index says a remote reader will fetch: per file, the header bytes read
once, and the episodes' spans against their floor (the bytes of the samples themselves).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["add_index_parser", "index_summary", "run_index_build", "run_index_show"]


def add_index_parser(subparsers: Any) -> None:
    """Add `index build|show` to an argparse subparsers object (the lerobot-inspect CLI calls it)."""
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = subparsers.add_parser(
        "index", formatter_class=formatter,
        help="build or show the MP4 byte index that lets remote readers fetch one episode's bytes",
        description="The byte index records where each (episode, camera) lives inside its MP4, so a remote "
                    "reader fetches the header and that episode's bytes instead of the whole file.",
        epilog="examples:\n  lerobot-inspect index build http://127.0.0.1:8000/ds --out /tmp/ds_index\n"
               "  lerobot-inspect index build /data/ds --threads 16\n  lerobot-inspect index show /data/ds",
    )
    commands = parser.add_subparsers(dest="index_command", required=True, metavar="{build,show}")
    build = commands.add_parser(
        "build", formatter_class=formatter, help="parse every MP4 header and write meta/byte_index/",
        description="Parse every MP4 header of ROOT through range reads and write ROOT/meta/byte_index/ "
                    "(files, episodes, frames .parquet). Interrupted builds resume where they stopped.",
    )
    build.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    build.add_argument("--threads", type=int, default=8, help="files parsed in parallel")
    build.add_argument("--out", default=None,
                       help="write the index here instead of ROOT/meta/byte_index (for read-only roots such as http)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(func=run_index_build)
    show = commands.add_parser(
        "show", formatter_class=formatter, help="summarise a saved byte index: files, episodes, bytes",
        description="Print, per video file, its size, episodes, header bytes and the episodes' spans "
                    "against the byte floor, then totals.",
    )
    show.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    show.add_argument("--index", default=None, help="read the index from this directory instead")
    show.set_defaults(func=run_index_show)


def run_index_build(args: argparse.Namespace) -> int:
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.io import RangeReader
    from lerobot_inspect.video.index_io import build_dataset_index, resume_dir_for, save_index, video_file_refs

    meta = DatasetMeta.open(args.root)
    reader = RangeReader(meta.fs)
    n_files = len(video_file_refs(meta))
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=n_files, unit="file", desc="index build", file=sys.stderr)

    def progress(done: int, total: int, path: str) -> None:
        if bar is not None:
            bar.set_postfix_str("/".join(path.rsplit("/", 3)[-3:]), refresh=False)
            bar.update(1)

    started = time.perf_counter()
    try:
        index = build_dataset_index(meta, reader, threads=args.threads, progress=progress,
                                    resume_dir=resume_dir_for(meta))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    where = save_index(meta, index, out=args.out)
    fetched = reader.stats.snapshot()
    print(f"{where}: {n_files} files, {len(index)} (episode, camera) entries in {seconds:.2f} s; "
          f"read {fetched['bytes']} bytes in {fetched['requests']} requests")
    return 0


def index_summary(index: Any) -> list[dict[str, Any]]:
    """One row per video file: size, episodes, header bytes, sum of spans and of floors."""
    import numpy as np

    from lerobot_inspect.video.remote import merge_ranges

    files = index.files.to_pylist()
    episodes = index.episodes
    file_id = episodes.column("file_id").to_numpy()
    span = (episodes.column("span_stop").to_numpy() - episodes.column("span_start").to_numpy()).astype(np.int64)
    floor = episodes.column("floor_bytes").to_numpy().astype(np.int64)
    rows = []
    for row in files:
        mine = file_id == row["file_id"]
        header = sum(b - a for a, b in merge_ranges(zip(row["header_starts"], row["header_stops"], strict=True)))
        rows.append({
            "path": row["path"], "camera": row["camera"], "codec": row["codec"],
            "size_bytes": int(row["size_bytes"]), "episodes": int(mine.sum()), "frames": int(row["n_samples"]),
            "header_bytes": int(header), "span_bytes": int(span[mine].sum()), "floor_bytes": int(floor[mine].sum()),
        })
    return rows


def run_index_show(args: argparse.Namespace) -> int:
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.video.byte_index import ByteIndex
    from lerobot_inspect.video.index_io import index_exists, load_index

    meta = DatasetMeta.open(args.root)
    if args.index is not None:
        index = ByteIndex.load(args.index)
    elif index_exists(meta):
        index = load_index(meta)
    else:
        print(f"{meta.url('meta/byte_index')}: no saved byte index. Build it with "
              f"`lerobot-inspect index build {meta.root}` (remote readers otherwise build it in memory).")
        return 1
    rows = index_summary(index)
    width = max([len(row["path"]) for row in rows] + [20])
    print(f"{'file':<{width}} {'codec':>5} {'size':>11} {'eps':>5} {'header':>9} {'spans':>11} {'floor':>11} "
          f"{'span/floor':>10}")
    for row in rows:
        ratio = row["span_bytes"] / row["floor_bytes"] if row["floor_bytes"] else float("nan")
        print(f"{row['path']:<{width}} {row['codec']:>5} {row['size_bytes']:>11} {row['episodes']:>5} "
              f"{row['header_bytes']:>9} {row['span_bytes']:>11} {row['floor_bytes']:>11} {ratio:>10.3f}")
    totals = {key: sum(r[key] for r in rows) for key in ("size_bytes", "episodes", "header_bytes", "span_bytes",
                                                          "floor_bytes")}
    ratio = totals["span_bytes"] / totals["floor_bytes"] if totals["floor_bytes"] else float("nan")
    label = f"total: {len(rows)} files"
    print(f"{label:<{width}} {'':>5} {totals['size_bytes']:>11} {totals['episodes']:>5} "
          f"{totals['header_bytes']:>9} {totals['span_bytes']:>11} {totals['floor_bytes']:>11} {ratio:>10.3f}")
    print("spans: bytes a remote reader fetches per episode (keyframe before the episode through decoder "
          "lookahead); floor: the episode's own sample bytes; header bytes are fetched once per file.")
    return 0
