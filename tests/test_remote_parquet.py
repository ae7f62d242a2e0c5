"""Parquet over a misbehaving server, and Parquet that would cost more memory than its bytes.

Data Parquet of remote roots is read through the range reader (retries, version pinning, byte
accounting), meta Parquet through fsspec with the same classification: a fault is retried, a
fault past the budget or a dead server is a FetchError naming the file, never a raw fsspec
traceback or "file not found". Only declared columns are read.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_fixtures.fault_server import FaultPlan, serve_directory
from lerobot_inspect.errors import DatasetFormatError, FetchError
from lerobot_inspect.format import DatasetMeta, validate
from lerobot_inspect.loaders.map_dataset import MapDataset
from lerobot_inspect.loaders.streaming import StreamingDataset

REPO = Path(__file__).resolve().parents[1]


def _indices(dataset) -> list[int]:
    return [int(sample["index"]) for sample in dataset]


@pytest.mark.parametrize("kind", ["500", "reset", "short", "wrong_range", "full_body"])
def test_parquet_faults_are_retried_and_the_rows_come_out_the_same(tiny_root: Path, kind: str) -> None:
    expected = _indices(StreamingDataset(tiny_root, seed=2, decode_video=False))
    plan = FaultPlan(kinds=(kind,), every=2, paths=(".parquet",))
    with serve_directory(tiny_root, faults=plan) as server:
        got = _indices(StreamingDataset(server.url, seed=2, decode_video=False))
        faults = server.stats()["faults"]
    assert got == expected
    assert faults.get(kind, 0) > 0, "the schedule spoiled some Parquet reads"


def test_a_server_that_always_ignores_range_on_parquet_fails_naming_the_file(tiny_root: Path) -> None:
    plan = FaultPlan(kinds=("full_body",), paths=("file-000.parquet",))
    with serve_directory(tiny_root, faults=plan) as server, pytest.raises(FetchError) as raised:
        MapDataset(server.url, video_access="byte_index")
    assert "file-000.parquet" in str(raised.value) and raised.value.file is not None
    assert "Range" in str(raised.value)


def test_an_unreachable_server_is_not_a_missing_file() -> None:
    with pytest.raises(FetchError, match="cannot reach the server") as raised:
        DatasetMeta.open("http://127.0.0.1:9/ds")
    assert raised.value.code == "unreachable"
    findings = validate("http://127.0.0.1:9/ds")
    assert [f.code for f in findings] == ["unreachable"] and "not found" not in findings[0].message


def _add_undeclared_bomb(root: Path, megabytes: int) -> Path:
    """An extra column (not in info.json) of zeros: a few KB stored, `megabytes` when read."""
    meta = DatasetMeta.open(str(root))
    path = root / meta.data_file(0)
    table = pq.read_table(path)
    per_row = (megabytes << 20) // table.num_rows
    bomb = pa.array([b"\0" * per_row] * table.num_rows, type=pa.binary())
    rows_per_group = [int(n) for n in meta.lengths[meta.episodes_in_data_file()[meta.data_file(0)]]]
    writer = pq.ParquetWriter(path, table.append_column("undeclared", bomb).schema, compression="zstd")
    start = 0
    for rows in rows_per_group:  # one row group per episode, as LeRobot writes
        writer.write_table(table.append_column("undeclared", bomb).slice(start, rows))
        start += rows
    writer.close()
    return path


def test_an_undeclared_column_is_never_read(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "tiny"
    shutil.copytree(tiny_root, root)
    path = _add_undeclared_bomb(root, 600)
    assert path.stat().st_size < 2 << 20, "the bomb is small on disk"
    script = (f"import resource; from lerobot_inspect.loaders.map_dataset import MapDataset\n"
              f"before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              f"ds = MapDataset({str(root)!r}); ds[0]\n"
              f"print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    grew_mb = int(done.stdout.split()[-1]) / 1024
    assert grew_mb < 200, f"reading the rows grew the process by {grew_mb:.0f} MB: the undeclared column was read"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_a_declared_column_that_inflates_past_its_rows_is_refused(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "tiny"
    shutil.copytree(tiny_root, root)
    meta = DatasetMeta.open(str(root))
    name = next(n for n, f in meta.features.items() if f.dtype == "float32" and f.shape and f.shape[0] > 1)
    path = root / meta.data_file(0)
    table = pq.read_table(path)
    width = 1 << 17  # 128k floats per row where info.json declares a handful
    values = pa.array([np.zeros(width, dtype=np.float32)] * table.num_rows, type=pa.list_(pa.float32()))
    table = table.set_column(table.column_names.index(name), name, values)
    pq.write_table(table, path, compression="zstd", row_group_size=int(meta.lengths[0]))
    with pytest.raises(DatasetFormatError, match="would decode to") as raised:
        MapDataset(str(root))
    assert raised.value.code == "data-inflated" and raised.value.file.endswith(meta.data_file(0))


def test_a_dripping_server_hits_the_request_deadline_and_the_error_counts_the_bytes(tiny_root: Path) -> None:
    """One byte every 50 ms: each request gets `timeout_s`, then the error names the file and how far it got."""
    from lerobot_inspect.io import RangeReader, open_root

    with serve_directory(tiny_root, faults=FaultPlan(kinds=("drip",), delay_s=0.05, paths=(".parquet",))) as server:
        fs, root = open_root(server.url)
        reader = RangeReader(fs, timeout_s=0.5, max_attempts=2, backoff_s=0.0)
        path = f"{root}/meta/tasks.parquet"
        with pytest.raises(FetchError) as raised:
            reader.read(path, 0, 2000)
    message = str(raised.value)
    assert "tasks.parquet" in message and "of 2000 bytes" in message and "2 attempt" in message
    assert raised.value.file == path


def test_a_nan_timestamp_never_passes_the_tolerance_check_over_http(tmp_path: Path, tiny_root: Path) -> None:
    from data_fixtures import corrupt

    root = tmp_path / "tiny"
    shutil.copytree(tiny_root, root)
    corrupt.rewrite_data_column(root, 1, "timestamp",
                                lambda ts: np.where(np.arange(len(ts)) == 3, np.float32("nan"), ts))
    meta = DatasetMeta.open(str(root))
    row = int(meta.dataset_from_index[1]) + 3
    with serve_directory(root) as server:
        dataset = MapDataset(server.url, video_access="byte_index")
        assert int(dataset[row - 1]["index"]) == row - 1  # its neighbours decode
        with pytest.raises(DatasetFormatError, match="not a number") as raised:
            dataset[row]
    assert raised.value.episode == 1 and raised.value.file.endswith(meta.data_file(1))
