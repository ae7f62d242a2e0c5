"""Altair chart builders over probe tables (plus one PIL composite for frames).

Charts take the DataFrames the probes return and cap what they embed, because a Vega-Lite spec
carries its data. Nothing here imports marimo: the same charts go into notebooks and the offline
report (rendered to SVG there).
"""

from lerobot_inspect.charts.audit import decode_grid, findings_bar
from lerobot_inspect.charts.fetches import bytes_vs_floor, fetch_size_histogram
from lerobot_inspect.charts.frames import frame_offsets, frames_side_by_side
from lerobot_inspect.charts.mixing import batch_episode_heatmap
from lerobot_inspect.charts.padding import padding_summary, padding_timeline
from lerobot_inspect.charts.resume import resume_overlap, resume_overview, resume_window

__all__ = [
    "batch_episode_heatmap",
    "bytes_vs_floor",
    "decode_grid",
    "fetch_size_histogram",
    "findings_bar",
    "frame_offsets",
    "frames_side_by_side",
    "padding_summary",
    "padding_timeline",
    "resume_overlap",
    "resume_overview",
    "resume_window",
]
