"""Report time and peak memory as the dataset grows: `lerobot-inspect report` at 200, 2,000 and 10,000
episodes, each size in a fresh process, with the time of every page and the size of every page.

    python benchmarks/report_scale.py                     # 200, 2000, 10000 episodes (generated once)
    python benchmarks/report_scale.py --sizes 200,2000 --json benchmarks/report_scale.json

Datasets come from `data_fixtures.cached_dataset` (built once per machine, then reused): 2 AV1
cameras at 64x48, GOP 2; 200 and 2,000 episodes of 20-40 frames, 10,000 episodes of 10-20 frames
(shorter, so encoding the fixture takes minutes rather than an hour; the report's cost grows with
episodes, and with frames only on the resume page, which reads indices without decoding).
Peak RSS is the largest single process of the report (the driver or one notebook's child), read
from `getrusage(RUSAGE_CHILDREN)` in a wrapper process per size, so sizes do not share a maximum.
This is a bench, not a test: it prints a table and writes JSON, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {
    200: {"episodes": 200, "episodes_per_file": 50},
    2000: {"episodes": 2000, "episodes_per_file": 100},
    10000: {"episodes": 10000, "episodes_per_file": 500, "length_range": (10, 20)},
}

# Runs in a fresh process per size: the report as a child, then the child's peak RSS.
_WRAPPER = """
import json, resource, subprocess, sys, time
root, out = sys.argv[1], sys.argv[2]
started = time.perf_counter()
proc = subprocess.run([sys.executable, "-m", "lerobot_inspect.cli", "report", root, "--out", out],
                      stdout=sys.stderr)
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "exit_code": proc.returncode, "peak_rss_mb": peak_kib / 1024}))
"""


def dataset_for(episodes: int) -> Path:
    """The generated dataset of that size (built on first use; printed progress while it is)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from data_fixtures import cached_dataset

    return cached_dataset(**SIZES[episodes])


def measure(episodes: int, out_root: Path) -> dict:
    root = dataset_for(episodes)
    info = json.loads((root / "meta" / "info.json").read_text())
    out = out_root / f"report_{episodes}"
    print(f"== {episodes} episodes, {info['total_frames']} frames: lerobot-inspect report {root} --out {out}",
          file=sys.stderr, flush=True)
    wrapper = subprocess.run([sys.executable, "-c", _WRAPPER, str(root), str(out)], capture_output=False,
                             stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(wrapper.stdout.strip().splitlines()[-1])
    record = json.loads((out / "report.json").read_text())
    pages = {page["name"]: {"status": page["status"], "level": page["level"], "seconds": page["duration_s"],
                            "page_mb": round((out / page["page"]).stat().st_size / 2**20, 2)}
             for page in record["pages"]}
    return {"episodes": episodes, "frames": info["total_frames"], "seconds": round(result["seconds"], 1),
            "peak_rss_mb": round(result["peak_rss_mb"]), "exit_code": result["exit_code"], "pages": pages}


def table(rows: list[dict]) -> str:
    """The README's Markdown table."""
    names = list(rows[0]["pages"]) if rows else []
    head = ("| episodes | frames | report | peak RSS | " + " | ".join(names) + " | largest page |\n"
            + "|---" * (5 + len(names)) + "|\n")
    lines = []
    for row in rows:
        pages = row["pages"]
        lines.append(f"| {row['episodes']:,} | {row['frames']:,} | {row['seconds']:.0f} s | {row['peak_rss_mb']} MB | "
                     + " | ".join(f"{pages[n]['seconds']:.0f} s" + ("" if pages[n]["status"] == "ok" else " FAILED")
                                  for n in names)
                     + f" | {max(p['page_mb'] for p in pages.values()):.1f} MB |")
    return head + "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,2000,10000", help="episode counts, among 200, 2000, 10000")
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument("--out", default=None, help="keep the reports here (default: a temporary folder)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        parser.error(f"--sizes {bad}: choose among {sorted(SIZES)}")
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lerobot_inspect_report_scale_"))
    rows = [measure(size, out_root) for size in sizes]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": "python benchmarks/report_scale.py --sizes " + args.sizes,
            "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
