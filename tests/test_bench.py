"""`lerobot-inspect bench` smoke test: every configuration reports every figure key (null where n/a)."""

from __future__ import annotations

from data_fixtures import cached_dataset
from lerobot_inspect.bench import FIGURES, run_bench


def test_bench_json_has_every_figure_for_every_config() -> None:
    root = cached_dataset(episodes=6, length_range=(10, 14), width=32, height=32, cameras=2, episodes_per_file=3)
    configs = ["decode_ceiling", "stream_pool_w0", "stream_pool_http_w0", "stream_pool_ring_w2"]
    report = run_bench(str(root), configs=configs, samples=24, batch_size=8, progress=None)
    assert set(report["configs"]) == set(configs)
    assert {"python", "cpus", "torch", "torchcodec"} <= set(report["machine"])
    for name, figures in report["configs"].items():
        assert "error" not in figures, (name, figures.get("error"))
        missing = [key for key in FIGURES if key not in figures]
        assert not missing, (name, missing)
    http = report["configs"]["stream_pool_http_w0"]
    assert http["bytes_over_floor"] >= 1.0 and http["requests_per_episode"] > 0
    assert http["ceiling_ratio"] > 0 and set(http["latency_ms"]) == {"p50", "p95", "p99"}
    assert report["configs"]["decode_ceiling"]["randomness_frac"] is None
    # Decode-ahead decodes a frame once for the neighbouring windows that share it: the ceiling ratio
    # is taken on the frames decoded, never more than the buffer's own count, never the delivered ones.
    pool = report["configs"]["stream_pool_w0"]
    decoded = pool["decoded_frames_per_s"] * pool["seconds"]
    assert 0.5 * pool["frames_per_s"] <= pool["decoded_frames_per_s"] < 0.75 * pool["frames_per_s"]
    assert round(decoded) <= pool["frames_decoded_counted"]
    ceiling = report["configs"]["decode_ceiling"]["frames_per_s"]
    assert abs(pool["ceiling_ratio"] - pool["decoded_frames_per_s"] / ceiling) < 1e-9
