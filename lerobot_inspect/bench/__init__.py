"""`lerobot-inspect bench`: loaders side by side on the same data, in one run.

    configs   the loader configurations (what runs): map-style, streaming pool, over loopback HTTP, ...
    measure   how each is measured: timed draining, peak RSS, the figures every result carries
    run       the driver: each configuration in its own spawned process, ratios to the decode ceiling
"""

from lerobot_inspect.bench.configs import CONFIGS, SCALE_CONFIGS, BenchConfig
from lerobot_inspect.bench.measure import FIGURES
from lerobot_inspect.bench.run import run_bench, run_scale, write_json

__all__ = ["CONFIGS", "FIGURES", "SCALE_CONFIGS", "BenchConfig", "run_bench", "run_scale", "write_json"]
