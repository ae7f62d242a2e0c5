"""The README's Python usage runs as written: a user who pastes it gets no error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_snippet_runs_as_written():
    text = (REPO / "README.md").read_text()
    usage = text[text.index("### Python"):]
    snippet = re.search(r"```python\n(.*?)```", usage, re.S).group(1)
    assert "state_dict(step=" in snippet, "the snippet shows resume from the training loop's step"
    check = ("\nexpected = []\nfresh = li.StreamingDataset(root, pool_size=16, seed=0, batch_size=32)\n"
             "fresh.set_epoch(1)\nexpected = [b['index'].tolist() for b in DataLoader(fresh, batch_size=32, "
             "num_workers=2)][3:]\nassert [b['index'].tolist() for b in rest] == expected, 'resume lost or repeated'\n")
    done = subprocess.run([sys.executable, "-c", snippet + check], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
