import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Decoded frames")

with app.setup:
    import marimo as mo

    from lerobot_inspect import DecodeError, MapDataset, charts
    from lerobot_inspect.probes.framecode import FrameCode, decode_frame_code, encode_frame_code
    from lerobot_inspect.probes.frames import (
        frame_parity,
        frame_rows,
        load_frame,
        shifted_copy,
        stream_parity_samples,
    )
    from lerobot_inspect.report.knobs import notebook_knobs



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
    expected frames and their differences (black = identical).
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
    run = mo.ui.run_button(label="Decode frames")
    mo.vstack([dataset_root, mo.hstack([shift_episode, pipeline, seed, run], justify="start", wrap=True)])
    return args, dataset_root, knobs, pipeline, run, seed, shift_episode


@app.cell
def _(args, dataset_root, pipeline, run, seed, shift_episode):
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Decode frames**."))
    root = dataset_root.value if shift_episode.value < 0 else shifted_copy(dataset_root.value, int(shift_episode.value))
    dataset = MapDataset(root)
    with mo.status.progress_bar(total=dataset.num_episodes, title="Decoding frames (map-style)") as _bar:
        _refused = []
        for _episode in dataset.episodes:
            if (frame_parity(dataset, episodes=[_episode])["error"] != "").any():
                _refused.append(_episode)
            _bar.update()
    with mo.status.spinner(title=f"Streaming every frame ({pipeline.value} pipeline)"):
        parity = frame_parity(dataset, stream_samples=stream_parity_samples(
            root, pipeline=pipeline.value, seed=int(seed.value), episodes=dataset.episodes, isolate=_refused))
    parity["camera_position"] = parity["camera"].map(dataset.meta.video_keys.index)
    return dataset, parity, root


@app.cell
def _(parity, pipeline, root, shift_episode):
    _wrong = parity[(parity["code_ok"] == False) | (parity["error"] != "") | (parity["next_episode_identical"] == True)]  # noqa: E712
    _episodes = sorted({int(e) for e in _wrong["episode_index"]})
    _both = parity[(parity["error"] == "") & (parity["stream_error"] == "")]
    _differ = _both[(_both["stream_max_abs_diff"] > 0) | (_both["stream_code_frame"] != _both["code_frame"])
                    | (_both["stream_timestamp_s"] != _both["timestamp_s"])]
    stream_refused = sorted({int(e) for e in parity.loc[parity["stream_error"] != "", "episode_index"]})
    stream_agrees = bool(len(_differ) == 0)
    verdict = "all frames are the frames asked for" if not _episodes else f"wrong frames in episodes {_episodes}"
    verdict += (f"; streaming ({pipeline.value}) matches map-style on all {len(_both)} frames both decoded"
                if stream_agrees else f"; streaming ({pipeline.value}) and map-style DIFFER on {len(_differ)} frame(s)")
    if stream_refused:
        verdict += f"; the stream refuses episodes {stream_refused}"
    if shift_episode.value >= 0:
        verdict += f" (seeded fault: episode {int(shift_episode.value)} shifted one frame on a temp copy)"
    verdict_level = "error" if _episodes or not stream_agrees else "ok"
    mo.md(f"**Verdict:** {verdict}  \n`{root}`")
    return stream_agrees, stream_refused, verdict, verdict_level


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
    _choices = [str(e) for e in dataset.episodes]
    episode = mo.ui.dropdown(options=_choices, value=_default if _default in _choices else _choices[0], label="episode")
    camera = mo.ui.dropdown(options=dataset.meta.video_keys, value=str(_wrong["camera"].iloc[0]) if len(_wrong) else dataset.meta.video_keys[0], label="camera")
    position = mo.ui.dropdown(options=["first", "middle", "last"], value="middle", label="frame")
    mo.hstack([episode, camera, position], justify="start")
    return camera, episode, position


@app.cell
def _(camera, dataset, episode, parity, position):
    _row = frame_rows(dataset, int(episode.value), [position.value])[position.value]
    _record = parity[(parity["episode_index"] == int(episode.value)) & (parity["camera"] == camera.value) & (parity["position"] == position.value)].iloc[0]
    _panels = {}
    try:
        _panels["map-style"] = load_frame(dataset, _row, camera.value)
    except DecodeError:
        _unchecked = unchecked_frame(dataset, _row, camera.value)
        if _unchecked is not None:
            _panels["unchecked decode"] = _unchecked
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
          + "Difference maps are amplified x4: black means identical.")
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
