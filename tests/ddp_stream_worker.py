"""One rank of the torchrun test in test_streaming_ddp.py (not a test module itself).

Usage: python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_stream_worker.py ROOT OUT_DIR
Each rank streams one epoch through a 2-worker DataLoader with rank/world size taken from the
initialized gloo process group, then resumes from the middle of the epoch using the batch sizes
all ranks report through an all_gather, and writes what it saw to OUT_DIR/rank-<r>.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from torch.utils.data import DataLoader

from lerobot_inspect.loaders.streaming import StreamingDataset

BATCH_SIZE, NUM_WORKERS, SEED = 3, 2, 13


def batches(dataset: StreamingDataset) -> list[list[int]]:
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, num_workers=NUM_WORKERS)
    return [batch["index"].tolist() for batch in loader]


def main(root: str, out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    dataset = StreamingDataset(root, seed=SEED, pool_size=2, batch_size=BATCH_SIZE, decode_video=False)
    full = batches(dataset)
    lengths: list[list[int]] = [None] * world_size  # type: ignore[list-item]
    dist.all_gather_object(lengths, [len(batch) for batch in full])
    # Checkpoint after `steps` lock-step steps: samples_seen sums every rank's batches of those steps.
    steps = min(map(len, lengths)) // 2
    samples_seen = sum(sum(rank_lengths[:steps]) for rank_lengths in lengths)
    state = dataset.state_dict(samples_seen=samples_seen, num_workers=NUM_WORKERS)
    resumed_dataset = StreamingDataset(root, seed=SEED, pool_size=2, batch_size=BATCH_SIZE, decode_video=False)
    resumed_dataset.load_state_dict(state)
    resumed = batches(resumed_dataset)
    next_epoch = StreamingDataset(root, seed=SEED, pool_size=2, batch_size=BATCH_SIZE, decode_video=False)
    next_epoch.set_epoch(1)
    report = {"rank": rank, "world_size": world_size, "seen_rank": dataset.rank, "seen_world_size": dataset.world_size,
              "full": full, "steps": steps, "resumed": resumed, "epoch1": [i for b in batches(next_epoch) for i in b]}
    Path(out_dir, f"rank-{rank}.json").write_text(json.dumps(report))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
