"""Where a streaming loader's CPU goes: steady samples/s with the main process's CPU and the DataLoader
workers' CPU reported apart, for the default StreamingDataset with the bench's windows (uint8 frames).

    python benchmarks/loader_cpu.py ROOT --workers 2 --ring          # collate_fn=ring_collate
    python benchmarks/loader_cpu.py ROOT --workers 2                 # torch's default_collate
    python benchmarks/loader_cpu.py ROOT                             # 0 workers
    python benchmarks/loader_cpu.py ROOT --workers 2 --ring --decode-ahead 4

`lerobot-inspect bench` compares loaders; this answers why one is slow: a main process that spends
cores on the hand-over, workers that burn CPU per sample. Steady figures start after the first 320
samples; the workers' CPU is their whole run's, start-up included, per sample delivered. This is a
bench, not a test: it prints one line and asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--ring", action="store_true", help="collate_fn=ring_collate")
    parser.add_argument("--decode-ahead", type=int, default=None, help="StreamingDataset(decode_ahead=N)")
    args = parser.parse_args()

    import torchcodec.decoders  # noqa: F401  (import cost is not what this measures)
    from torch.utils.data import DataLoader

    from lerobot_inspect.bench.configs import bench_windows
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.loaders.collate import ring_collate
    from lerobot_inspect.loaders.streaming import open_stream

    meta = DatasetMeta.open(args.root)
    budget = {"samples": args.samples, "batch_size": 32, "seed": 0}
    options = {} if args.decode_ahead is None else {"decode_ahead": args.decode_ahead}
    dataset = open_stream(meta, seed=0, batch_size=32, return_uint8=True, delta_timestamps=bench_windows(meta, budget),
                          **options)
    loader = DataLoader(dataset, batch_size=32, num_workers=args.workers,
                        multiprocessing_context="fork" if args.workers else None,
                        collate_fn=ring_collate if args.ring else None)
    start = time.perf_counter()
    done = 0
    first = warm_at = warm_cpu = None
    warm_done = 0
    for batch in loader:
        done += len(batch["index"])
        now = time.perf_counter()
        first = first if first is not None else now - start
        if warm_at is None and done >= 320:
            warm_at, warm_done, warm_cpu = now, done, time.process_time()
        if done >= args.samples:
            break
    end, end_cpu = time.perf_counter(), time.process_time()
    del loader  # workers exit, so their CPU shows in RUSAGE_CHILDREN
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if warm_at is None or first is None:
        raise SystemExit(f"only {done} samples: the steady figures need more than 320")
    depth = dataset.ahead.depth if getattr(dataset, "ahead", None) is not None else 0
    print(f"workers={args.workers} ring={args.ring} depth={depth} first_batch={first:.2f}s "
          f"steady={(done - warm_done) / (end - warm_at):.0f} samples/s "
          f"main_cpu={(end_cpu - warm_cpu) / (end - warm_at):.2f} cores "
          f"workers_cpu={(children.ru_utime + children.ru_stime) * 1e3 / done:.2f} ms/sample")


if __name__ == "__main__":
    main()
