"""Frame charts: decoded vs expected frames side by side with a difference map, and frame offsets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from lerobot_inspect.charts._common import WIDTH, cap_rows, require_columns

__all__ = ["frame_offsets", "frames_side_by_side"]


def _hwc_uint8(frame: Any) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=2)
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(array * 255.0, 0, 255)
    return array.astype(np.uint8)


def frames_side_by_side(frames: Mapping[str, Any], *, scale: int | None = None,
                        diff_gain: float = 4.0) -> Image.Image:
    """One labelled image: each frame, then |frame - first frame| for every other frame.

    Frames may be PIL images, HWC/CHW numpy or torch, uint8 or float in [0, 1]. The difference map
    is amplified by `diff_gain` so codec noise shows as faint speckle and a wrong frame as bright
    blocks: identical frames give a black map. `scale` enlarges pixels (default: about 256 px per
    panel for small frames, none from 256 px wide up, so 640x480 panels stay 640x480)."""
    if not frames:
        raise ValueError("frames_side_by_side needs at least one frame")
    names = list(frames)
    arrays = [_hwc_uint8(frames[n]) for n in names]
    if scale is None:  # small fixture frames enlarged to about 256 px wide; 320x240 and up as they are
        scale = max(1, min(4, 256 // max(a.shape[1] for a in arrays)))
    reference = arrays[0].astype(np.int16)
    panels = list(zip(names, arrays, strict=True))
    for name, array in panels[1:]:
        if array.shape == reference.shape:
            diff = np.clip(np.abs(array.astype(np.int16) - reference) * diff_gain, 0, 255).astype(np.uint8)
            panels.append((f"|{name} - {names[0]}|", diff))
    label_h = 14
    height = max(a.shape[0] for _, a in panels) * scale
    widths = [a.shape[1] * scale for _, a in panels]
    gap = 8
    canvas = Image.new("RGB", (sum(widths) + gap * (len(panels) - 1), height + label_h), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for (name, array), width in zip(panels, widths, strict=True):
        image = Image.fromarray(array).resize((width, array.shape[0] * scale), Image.NEAREST)
        canvas.paste(image, (x, label_h))
        draw.text((x + 2, 1), name[: max(4, width // 6)], fill="black")
        x += width + gap
    return canvas


def frame_offsets(parity: pd.DataFrame) -> alt.Chart:
    """Per episode and camera: frames received minus frames asked for (0 = right frame).

    Cells read from fixture frame codes; a decode error shows as 'error', another episode's frame as
    'other episode' (the last frame of a shifted episode lands in the next one)."""
    require_columns(parity, ["episode_index", "camera", "position", "frame_offset", "error"], "frame_offsets")
    table = cap_rows(parity.copy())
    status = np.where(table["error"] != "", "refused / decode error",
                      np.where(table["frame_offset"].isna(),
                               np.where(table["code_episode"] >= 0, "other episode", "no code"),
                               np.where(table["frame_offset"] == 0, "right frame", "shifted")))
    table["status"] = status
    table["cell"] = table["position"] + " " + table["frame_offset"].map(
        lambda v: "" if pd.isna(v) else f"{int(v):+d}")
    return alt.Chart(table, title="Frame received vs frame asked for").mark_rect().encode(
        # 60 sampled episode numbers of 4-5 digits do not fit side by side: keep every label that fits
        x=alt.X("episode_index:O", title="episode",
                axis=alt.Axis(labelOverlap="greedy", labelSeparation=8, labelAngle=0)),
        y=alt.Y("position:N", sort=["first", "middle", "last"], title=None),
        row=alt.Row("camera:N", title=None, header=alt.Header(labelAngle=0, labelOrient="top", labelAlign="left")),
        color=alt.Color("status:N", title=None, scale=alt.Scale(
            domain=["right frame", "shifted", "other episode", "refused / decode error", "no code"],
            range=["#4c9a5a", "#e69f00", "#d35400", "#c0392b", "#b8c4d0"])),
        tooltip=["episode_index", "camera", "position", "frame_index", "code_episode", "code_frame",
                 "frame_offset", "status"],
    ).properties(width=WIDTH - 100)
