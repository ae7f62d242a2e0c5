"""What each `lerobot-inspect` subcommand does once its arguments are parsed.

Every handler takes the parsed arguments, returns the exit code and imports what it needs inside
itself, so building the parser (and `--help`) costs no heavy import.

`index build` parses every MP4 header of a dataset (local or remote) through range reads and writes
meta/byte_index/ next to it, so every later remote reader starts from the saved tables instead of
re-parsing headers. It is resumable: finished files are kept in a local scratch directory until the
whole build succeeds, so a rerun after a network failure only parses what is missing. `index show`
prints what the index says a remote reader will fetch: per file, the header bytes read once, and
the episodes' spans against their floor (the bytes of the samples themselves).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import Any

__all__ = ["index_summary", "run_audit", "run_bench", "run_demo", "run_index_build", "run_index_show",
           "run_report"]


# ---------------------------------------------------------------------------------------- audit
def run_audit(args: argparse.Namespace) -> int:
    from lerobot_inspect.probes.audit import audit_dataset, format_report

    report = audit_dataset(args.root, decode=args.decode or False)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------------------- index
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


# ---------------------------------------------------------------------------------------- report, demo
def _knobs_from(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs set on the command line (report.json records them), delta_timestamps as JSON."""
    from lerobot_inspect.errors import OptionError
    from lerobot_inspect.report.knobs import KNOBS

    knobs = {knob.name: getattr(args, knob.name, None) for knob in KNOBS}
    if knobs.get("delta_timestamps"):
        try:
            knobs["delta_timestamps"] = json.loads(knobs["delta_timestamps"])
        except json.JSONDecodeError as exc:
            raise OptionError(f"--delta-timestamps is not JSON ({exc}); "
                              'write it like \'{"action": [0.0, 0.0333]}\'') from exc
    return {k: v for k, v in knobs.items() if v is not None}


def _build(root: str, args: argparse.Namespace, knobs: dict[str, Any]) -> int:
    from lerobot_inspect.report import build_report

    notebooks = [n.strip() for n in args.notebooks.split(",") if n.strip()]
    result = build_report(root, args.out, notebooks=notebooks, knobs=knobs, timeout_s=args.timeout,
                          notebook_dir=args.notebook_dir,
                          command=shlex.join(["lerobot-inspect", *sys.argv[1:]]) if sys.argv[1:] else None)
    print(f"report: {result.index.resolve().as_uri()}")
    failed = [p for p in result.pages if p.status == "failed"]
    for page in failed:
        print(f"FAILED {page.name}: {page.error.strip().splitlines()[0] if page.error.strip() else page.verdict}",
              file=sys.stderr)
    return 1 if failed else 0


def run_report(args: argparse.Namespace) -> int:
    return _build(args.root, args, _knobs_from(args))


def run_demo(args: argparse.Namespace) -> int:
    from lerobot_inspect._resources import tiny_root
    from lerobot_inspect.errors import OptionError

    root = tiny_root()
    if not (root / "meta" / "info.json").is_file():
        raise OptionError(f"the bundled tiny fixture is missing ({root}); reinstall lerobot_inspect, or run "
                          "`lerobot-inspect report ROOT --out DIR` on a dataset of your own")
    knobs = _knobs_from(args)
    knobs.setdefault("shift_episode", 0)  # the frames page shows a one-frame shift being caught
    return _build(str(root), args, knobs)


# ---------------------------------------------------------------------------------------- bench
def run_bench(args: argparse.Namespace) -> int:
    from lerobot_inspect.bench import SCALE_CONFIGS, run_bench, run_scale, write_json

    configs = args.configs.split(",") if args.configs else None

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.scale:
        report = run_scale(args.root, args.scale, configs=configs or SCALE_CONFIGS, samples=args.samples,
                           batch_size=args.batch_size, seed=args.seed, progress=progress)
        results = {**report["small"]["configs"], **report["large"]["configs"]}
    else:
        report = run_bench(args.root, configs=configs, samples=args.samples, batch_size=args.batch_size,
                           seed=args.seed, progress=progress)
        results = report["configs"]
    if args.json_out:
        write_json(report, args.json_out)
        print(f"wrote {args.json_out}", file=sys.stderr)
    else:
        print(json.dumps(report, indent=2))
    failed = [name for name, result in results.items() if "error" in result]
    return 1 if failed else 0
