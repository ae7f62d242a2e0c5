"""Audit timings on one dataset: metadata-and-header audit, `--decode sampled` and `--decode full`,
and the decode ceiling (a plain sequential TorchCodec decode of the same MP4s), each in a fresh process.

    python benchmarks/audit_speed.py ROOT [--json benchmarks/audit_1k.json]

ROOT is any v3 dataset; the committed figures come from
`python -c "from data_fixtures import generate_dataset; generate_dataset('/tmp/audit1k', episodes=1000)"`
(1,000 episodes of 20-40 frames, 2 AV1 cameras 64x48 and 48x32, GOP 2).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

META = """
import json, sys, time
t = time.perf_counter()
from lerobot_inspect.format import validate
findings = validate(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "findings": len(findings),
                  "torch_imported": "torch" in sys.modules}))
"""

AUDIT = """
import json, sys, time
t = time.perf_counter()
from lerobot_inspect.probes.audit import audit_dataset
report = audit_dataset(sys.argv[1], decode=sys.argv[2] if sys.argv[2] != "none" else False)
print(json.dumps({"seconds": time.perf_counter() - t, "findings": len(report.findings), "decode": report.decode}))
"""

# Plain sequential TorchCodec decode of every MP4, 64 frames per call: the ceiling both scripts use.
_CEILING_FN = """
import json, statistics, sys, time
from torchcodec.decoders import VideoDecoder
from lerobot_inspect.format import DatasetMeta
meta = DatasetMeta.open(sys.argv[1])

def ceiling():
    frames, t = 0, time.perf_counter()
    for camera in meta.video_keys:
        for rel in meta.video_files(camera):
            decoder = VideoDecoder(meta.path(rel), seek_mode="approximate", dimension_order="NHWC")
            for begin in range(0, len(decoder), 64):
                frames += len(decoder.get_frames_in_range(begin, min(begin + 64, len(decoder))).data)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "frames": frames, "frames_per_s": frames / seconds}
"""

CEILING = _CEILING_FN + """
print(json.dumps(ceiling()))
"""

# The same files, one process, alternating 3 times: the ceiling and the audit's full pass see the
# same page cache and the same neighbours on a shared machine; medians are reported.
SIDE_BY_SIDE = _CEILING_FN + """
from lerobot_inspect.probes.decode_check import decode_pass

runs = {"ceiling": [], "full_pass": []}
for _ in range(3):
    runs["ceiling"].append(ceiling()["frames_per_s"])
    runs["full_pass"].append(decode_pass(meta, mode="full").frames_per_s)
out = {k: {"median_frames_per_s": statistics.median(v), "runs": [round(x) for x in v]} for k, v in runs.items()}
out["ratio"] = out["full_pass"]["median_frames_per_s"] / out["ceiling"]["median_frames_per_s"]
print(json.dumps(out))
"""


def run(code: str, *args: str) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    from lerobot_inspect.format import DatasetMeta

    meta = DatasetMeta.open(args.root)
    results = {
        "root": args.root,
        "episodes": meta.num_episodes,
        "frames": int(meta.lengths.sum()),
        "cameras": len(meta.video_keys),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "metadata_and_headers": run(META, args.root),
        "audit_no_decode": run(AUDIT, args.root, "none"),
        "decode_ceiling": run(CEILING, args.root),
        "audit_decode_sampled": run(AUDIT, args.root, "sampled"),
        "audit_decode_full": run(AUDIT, args.root, "full"),
        "full_pass_vs_ceiling": run(SIDE_BY_SIDE, args.root),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
