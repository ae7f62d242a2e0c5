import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Decoded frames")

with app.setup:
    import marimo as mo

    from lerobot_inspect import DecodeError, MapDataset, charts
    from lerobot_inspect.loaders.streaming import open_stream
    from lerobot_inspect.probes.framecode import FrameCode, decode_frame_code, encode_frame_code
    from lerobot_inspect.probes.frames import (
        frame_parity,
        frame_rows,
        load_frame,
        sample_episodes,
        shifted_copy,
        stream_parity_samples,
    )
    from lerobot_inspect.report.knobs import notebook_knobs
    from lerobot_inspect.report.progress import progress_bar



@app.function
def expected_frames(parity_row, frame):
    """The frame a fixture should have returned (drawn from its code), or None when the decoded
    frame carries no fixture code (real datasets)."""
    try:
        decode_frame_code(frame)
    except ValueError:
        return None
    code = FrameCode(int(parity_row["camera_position"]), int(parity_row["episode_index"]), int(parity_row["frame_index"]))
    return encode_frame_code(code, frame.shape[0], frame.shape[1])


@app.function
def short_error(text: str) -> str:
    """An error without the file path it starts with, cut to a table cell."""
    text = text.split(".mp4: ", 1)[-1]
    return text if len(text) <= 90 else text[:87] + "..."


@app.function
def unchecked_frame(dataset, row: int, camera: str):
    """The frame a loader without the span check would hand to training (for the side-by-side panel
    of an episode the loader refuses); None when even that does not decode."""
    from lerobot_inspect.video.reader import VideoReader

    reader = VideoReader(dataset.meta, check_spans=False, return_uint8=True)
    episode = int(dataset.episode_of_row[row])
    try:
        return reader.frames(episode, camera, [float(dataset.timestamp[row])])[0].permute(1, 2, 0).numpy()
    except DecodeError:
        return None


@app.function
def streamed_frame(root, pipeline: str, seed: int, episode: int, index: int, camera: str):
    """The frame the streaming loader yields for dataset `index` (streaming only its episode), or
    None when the stream refuses the episode or does not yield that frame."""
    import numpy as np

    try:
        for sample in open_stream(root, pipeline=pipeline, seed=seed, episodes=[episode], return_uint8=True):
            if int(sample["index"]) == index and camera in sample:
                frame = sample[camera]
                frame = frame[0] if frame.ndim == 4 else frame
                return np.asarray(frame.permute(1, 2, 0))
    except DecodeError:
        return None
    return None


@app.function
def frames_verdict(parity, *, pipeline: str, shift_episode: int, checked: int, total: int) -> tuple[str, str, dict]:
    """(verdict, level, counts) of the frames page. A frame whose code could not be read is unchecked,
    not right; the fault the page seeds on purpose reads as such first; the level matches the words."""
    ran = parity[parity["error"] == ""]
    fixture = bool(ran["code_ok"].notna().any())
    wrong = parity[(parity["code_ok"] == False) | (parity["error"] != "") | (parity["next_episode_identical"] == True)]  # noqa: E712
    wrong_episodes = sorted({int(e) for e in wrong["episode_index"]})
    unchecked = int(ran["code_ok"].isna().sum()) if fixture else 0
    both = parity[(parity["error"] == "") & (parity["stream_error"] == "")]
    differ = both[(both["stream_max_abs_diff"] > 0) | (both["stream_code_frame"] != both["code_frame"])
                  | (both["stream_timestamp_s"] != both["timestamp_s"])]
    stream_refused = sorted({int(e) for e in parity.loc[parity["stream_error"] != "", "episode_index"]})
    parts, level = [], "ok"
    if shift_episode >= 0:
        others = [e for e in wrong_episodes if e != shift_episode]
        if shift_episode in wrong_episodes:
            parts.append(f"seeded fault found: episode {shift_episode}, shifted one frame on a temporary copy on "
                         "purpose, reads as wrong frames")
        else:
            parts.append(f"seeded fault NOT found: episode {shift_episode} was shifted one frame on purpose and "
                         "every frame of it reads as right")
            level = "error"
        if others:
            parts.append(f"wrong frames also in episodes {others[:20]}")
            level = "error"
    elif wrong_episodes:
        parts.append(f"wrong frames in episodes {wrong_episodes[:20]}"
                     + (f" and {len(wrong_episodes) - 20} more" if len(wrong_episodes) > 20 else ""))
        level = "error"
    elif fixture:
        parts.append(f"all {len(ran) - unchecked} frames whose code was read are the frames asked for")
    else:
        parts.append("no frame carries a fixture code: checked by map-style vs stream parity and episode "
                     "boundaries only")
    if unchecked:
        parts.append(f"{unchecked} of {len(ran)} decoded frames UNCHECKED (their frame code could not be read)")
        level = "error" if level == "error" else "warning"
    if differ.empty:
        parts.append(f"streaming ({pipeline}) matches map-style on all {len(both)} frames both decoded")
    else:
        parts.append(f"streaming ({pipeline}) and map-style DIFFER on {len(differ)} frame(s)")
        level = "error"
    if stream_refused:
        parts.append(f"the stream refuses episodes {stream_refused[:20]}")
    if checked < total:
        parts.append(f"checked {checked} of {total} episodes, evenly spaced (the audit decodes every episode)")
    counts = {"unchecked": unchecked, "wrong_episodes": wrong_episodes, "stream_agrees": bool(differ.empty),
              "stream_refused": stream_refused}
    return "; ".join(parts), level, counts


@app.cell
def _():
    mo.md("""
    # Decoded frames

    **What this shows:** the first, middle and last frame of each episode decoded through the
    loader, and whether each is the frame that was asked for (fixture frames carry a code naming
    their episode and frame), through the map-style loader and through the streaming loader (the
    pipeline you choose) side by side. **How to read it:** green is the right frame; orange means
    the episode's video timestamps are shifted and training silently gets a neighbour frame; red
    means the loader refused the frame (the message says why); the table puts both loaders' codes,
    timestamps and their pixel difference on one row; the panel shows map-style, streamed and
    expected frames and their differences (black = identical). On large datasets the page checks
    an even spread of episodes (`frames episodes`, default 60) and says how many.
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    knobs = notebook_knobs("frames", args)
    dataset_root = mo.ui.text(value=knobs["dataset"], label="dataset root", full_width=True)
    # Opened without a dataset (the bundled fixture), the page seeds its demo fault unless told otherwise.
    _shift = knobs["shift_episode"] if "dataset" in args or "shift-episode" in args else 0
    shift_episode = mo.ui.number(start=-1, stop=100000, value=_shift, label="demo: shift this episode by one frame on a temp copy (-1 = off)")
    pipeline = mo.ui.dropdown(options=["pool", "datasets"], value=knobs["pipeline"].split(",")[0], label="streaming pipeline")
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=knobs["seed"], label="seed")
    frames_episodes = mo.ui.number(start=1, stop=100000, value=knobs["frames_episodes"], label="episodes to check")
    run = mo.ui.run_button(label="Decode frames")
    mo.vstack([dataset_root, mo.hstack([shift_episode, pipeline, seed, frames_episodes, run], justify="start", wrap=True)])
    return args, dataset_root, frames_episodes, knobs, pipeline, run, seed, shift_episode


@app.cell
def _(args, dataset_root, frames_episodes, knobs, pipeline, run, seed, shift_episode):
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Decode frames**."))
    root = dataset_root.value if shift_episode.value < 0 else shifted_copy(dataset_root.value, int(shift_episode.value))
    dataset = MapDataset(root)
    _include = [int(shift_episode.value)] + ([] if knobs["episode"] is None else [int(knobs["episode"])])
    checked = sample_episodes(dataset.episodes, int(frames_episodes.value), include=_include)
    with progress_bar(total=len(checked), title=f"Decoding first/middle/last frames of {len(checked)} episodes (map-style)") as _bar:
        _refused = []
        for _episode in checked:
            if (frame_parity(dataset, episodes=[_episode])["error"] != "").any():
                _refused.append(_episode)
            _bar.update()
    _lengths = dataset.meta.lengths
    _stream_frames = int(sum(int(_lengths[e]) for e in checked))

    def _counted(samples, bar):
        for _sample in samples:
            bar.update()
            yield _sample

    with progress_bar(total=_stream_frames, title=f"Streaming the {_stream_frames} frames of those episodes ({pipeline.value} pipeline)") as _bar:
        parity = frame_parity(dataset, episodes=checked, stream_samples=_counted(stream_parity_samples(
            root, pipeline=pipeline.value, seed=int(seed.value), episodes=checked, isolate=_refused), _bar))
    parity["camera_position"] = parity["camera"].map(dataset.meta.video_keys.index)
    return checked, dataset, parity, root


@app.cell
def _(checked, dataset, parity, pipeline, root, shift_episode):
    verdict, verdict_level, _counts = frames_verdict(
        parity, pipeline=pipeline.value, shift_episode=int(shift_episode.value), checked=len(checked),
        total=dataset.num_episodes)
    unchecked, stream_agrees, stream_refused = _counts["unchecked"], _counts["stream_agrees"], _counts["stream_refused"]
    mo.md(f"**Verdict:** {verdict}  \n`{root}`")
    return stream_agrees, stream_refused, unchecked, verdict, verdict_level


@app.cell
def _(parity):
    chart = charts.frame_offsets(parity)
    chart
    return (chart,)


@app.cell
def _(dataset, knobs, parity):
    _wrong = parity[(parity["code_ok"] == False) | (parity["next_episode_identical"] == True)]  # noqa: E712
    _first = int(_wrong["episode_index"].iloc[0]) if len(_wrong) else dataset.episodes[0]
    _default = str(_first if knobs["episode"] is None else knobs["episode"])
    _choices = [str(e) for e in sorted({int(e) for e in parity["episode_index"]})]
    episode = mo.ui.dropdown(options=_choices, value=_default if _default in _choices else _choices[0], label="episode")
    camera = mo.ui.dropdown(options=dataset.meta.video_keys, value=str(_wrong["camera"].iloc[0]) if len(_wrong) else dataset.meta.video_keys[0], label="camera")
    position = mo.ui.dropdown(options=["first", "middle", "last"], value="middle", label="frame")
    mo.hstack([episode, camera, position], justify="start")
    return camera, episode, position


@app.cell
def _(camera, dataset, episode, parity, pipeline, position, root, seed):
    _row = frame_rows(dataset, int(episode.value), [position.value])[position.value]
    _record = parity[(parity["episode_index"] == int(episode.value)) & (parity["camera"] == camera.value) & (parity["position"] == position.value)].iloc[0]
    _panels = {}
    try:
        _panels["map-style"] = load_frame(dataset, _row, camera.value)
    except DecodeError:
        _unchecked = unchecked_frame(dataset, _row, camera.value)
        if _unchecked is not None:
            _panels["unchecked decode"] = _unchecked
    _streamed = streamed_frame(root, pipeline.value, int(seed.value), int(episode.value), int(_record["index"]), camera.value)
    if _streamed is not None:
        _panels[f"streamed ({pipeline.value})"] = _streamed
    _expected = expected_frames(_record, next(iter(_panels.values()))) if _panels else None
    if _expected is not None:
        _panels["expected"] = _expected
    side_by_side = charts.frames_side_by_side(_panels) if _panels else None
    side_by_side
    return (side_by_side,)


@app.cell
def _(camera, episode, parity, position):
    _record = parity[(parity["episode_index"] == int(episode.value)) & (parity["camera"] == camera.value) & (parity["position"] == position.value)].iloc[0]
    mo.md(f"Episode {episode.value}, `{camera.value}`, {position.value} frame. "
          + ("**The loader refuses this frame:** " + _record["error"].split(". (")[0] + ". The panel shows what a "
             "loader without the span check would decode instead. " if _record["error"] else "")
          + ("" if _record["stream_error"] == "" else "The stream refuses this episode too, so there is no streamed panel. ")
          + "Panels: map-style, the streamed frame for the same index, the expected frame drawn from its code; "
          + "then each one's difference to the first panel, amplified x4: black means identical.")
    return


@app.cell
def _(parity):
    _columns = ["episode_index", "camera", "position", "frame_index", "timestamp_s", "stream_timestamp_s",
                "code_episode", "code_frame", "stream_code_episode", "stream_code_frame", "stream_max_abs_diff",
                "error", "stream_error"]
    side_table = parity[_columns].rename(columns={
        "timestamp_s": "map ts", "stream_timestamp_s": "stream ts", "code_episode": "map code ep",
        "code_frame": "map code frame", "stream_code_episode": "stream code ep",
        "stream_code_frame": "stream code frame", "stream_max_abs_diff": "max |map - stream|"})
    # Problems first: a refusal, a wrong or unreadable code, a stream that differs; then the rest in order.
    _problem = ((parity["error"] != "") | (parity["stream_error"] != "") | (parity["code_ok"] == False)  # noqa: E712
                | parity["code_ok"].isna() | (parity["stream_max_abs_diff"] > 0))
    side_table = side_table.assign(_problem=~_problem).sort_values(["_problem", "episode_index"], kind="stable").drop(columns="_problem")
    side_table["error"] = side_table["error"].map(short_error)
    side_table["stream_error"] = side_table["stream_error"].map(short_error)
    side_table
    return (side_table,)


@app.cell
def _(parity):
    table = parity.drop(columns=["camera_position"])
    return (table,)


if __name__ == "__main__":
    app.run()
