"""StreamingDataset under a real `torchrun --nproc-per-node 2` (gloo, CPU): ranks split the epoch exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lerobot_inspect.format import DatasetMeta

WORKER = Path(__file__).with_name("ddp_stream_worker.py")


def test_two_torchrun_ranks_cover_every_frame_once_and_resume(tiny_root, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(WORKER), str(tiny_root), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env={**_clean_env(), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    reports = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in range(2)]
    meta = DatasetMeta.open(tiny_root)
    assert [(r["seen_rank"], r["seen_world_size"]) for r in reports] == [(0, 2), (1, 2)]
    per_rank = [{i for batch in r["full"] for i in batch} for r in reports]
    assert per_rank[0].isdisjoint(per_rank[1])
    assert per_rank[0] | per_rank[1] == set(range(meta.total_frames))
    assert sum(len(batch) for r in reports for batch in r["full"]) == meta.total_frames
    for report in reports:
        assert report["steps"] > 0
        assert report["resumed"] == report["full"][report["steps"]:], f"rank {report['rank']} resumed wrongly"
    epoch1 = [set(r["epoch1"]) for r in reports]
    assert epoch1[0] | epoch1[1] == set(range(meta.total_frames)) and epoch1[0].isdisjoint(epoch1[1])
    assert [r["epoch1"] for r in reports] != [[i for b in r["full"] for i in b] for r in reports]


def _clean_env() -> dict[str, str]:
    """This environment without torchrun variables a parent launcher may have set."""
    launcher = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"}
    return {key: value for key, value in os.environ.items() if key not in launcher}
