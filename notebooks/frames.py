import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Decoded frames")

with app.setup:
    import shutil
    import tempfile
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from lerobot_inspect import MapDataset, charts
    from lerobot_inspect.probes.frames import frame_parity, frame_rows, load_frame


@app.function
def default_dataset() -> str:
    """The committed tiny fixture next to this notebook (generated into the temp dir if absent)."""
    tiny = Path(mo.notebook_dir() or ".").resolve().parent / "data_fixtures" / "tiny"
    if (tiny / "meta" / "info.json").exists():
        return str(tiny)
    from data_fixtures import cached_dataset

    return str(cached_dataset(episodes=5, length_range=(20, 40), episodes_per_file=2))


@app.function
def shifted_copy(root: str, episode: int) -> str:
    """A temporary copy of `root` whose first camera's from/to_timestamp for `episode` is one frame late."""
    from data_fixtures.corrupt import shift_video_timestamps
    from lerobot_inspect.format import DatasetMeta

    copy = Path(tempfile.mkdtemp(prefix="lerobot_inspect_shifted_")) / "dataset"
    shutil.copytree(root, copy)
    shift_video_timestamps(copy, DatasetMeta.open(str(copy)).video_keys[0], episode, frames=1)
    return str(copy)


@app.function
def expected_frames(parity_row, frame):
    """The frame a fixture should have returned (drawn from its code), or None off fixtures."""
    try:
        from data_fixtures import FrameCode, encode_frame_code
    except ImportError:
        return None
    if parity_row["code_episode"] < 0:
        return None
    code = FrameCode(int(parity_row["camera_position"]), int(parity_row["episode_index"]), int(parity_row["frame_index"]))
    return encode_frame_code(code, frame.shape[0], frame.shape[1])


@app.cell
def _():
    mo.md("""
    # Decoded frames

    **What this shows:** the first, middle and last frame of each episode decoded through the
    loader, and whether each is the frame that was asked for (fixture frames carry a code naming
    their episode and frame). **How to read it:** green is the right frame; orange means the
    episode's video timestamps are shifted and training silently gets a neighbour frame; the side
    by side panel shows decoded, expected and their difference (black = identical).
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    dataset_root = mo.ui.text(value=str(args.get("dataset") or default_dataset()), label="dataset root", full_width=True)
    _shift = args.get("shift-episode", -1 if "dataset" in args else 0)
    shift_episode = mo.ui.number(start=-1, stop=100000, value=int(_shift), label="demo: shift this episode by one frame on a temp copy (-1 = off)")
    run = mo.ui.run_button(label="Decode frames")
    mo.vstack([dataset_root, mo.hstack([shift_episode, run], justify="start")])
    return args, dataset_root, run, shift_episode


@app.cell
def _(args, dataset_root, run, shift_episode):
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Decode frames**."))
    root = dataset_root.value if shift_episode.value < 0 else shifted_copy(dataset_root.value, int(shift_episode.value))
    dataset = MapDataset(root)
    with mo.status.progress_bar(total=dataset.num_episodes, title="Decoding frames") as _bar:
        _parts = []
        for _episode in dataset.episodes:
            _parts.append(frame_parity(dataset, episodes=[_episode]))
            _bar.update()
    parity = pd.concat(_parts, ignore_index=True)
    parity["camera_position"] = parity["camera"].map(dataset.meta.video_keys.index)
    return dataset, parity, root


@app.cell
def _(parity, root):
    _wrong = parity[(parity["code_ok"] == False) | (parity["error"] != "") | (parity["next_episode_identical"] == True)]  # noqa: E712
    _episodes = sorted({int(e) for e in _wrong["episode_index"]})
    verdict = "all frames are the frames asked for" if not _episodes else f"wrong frames in episodes {_episodes}"
    verdict_level = "error" if _episodes else "ok"
    mo.md(f"**Verdict:** {verdict}  \n`{root}`")
    return verdict, verdict_level


@app.cell
def _(parity):
    chart = charts.frame_offsets(parity)
    chart
    return (chart,)


@app.cell
def _(args, dataset, parity):
    _wrong = parity[(parity["code_ok"] == False) | (parity["next_episode_identical"] == True)]  # noqa: E712
    _default = str(args.get("episode", int(_wrong["episode_index"].iloc[0]) if len(_wrong) else dataset.episodes[0]))
    _choices = [str(e) for e in dataset.episodes]
    episode = mo.ui.dropdown(options=_choices, value=_default if _default in _choices else _choices[0], label="episode")
    camera = mo.ui.dropdown(options=dataset.meta.video_keys, value=str(_wrong["camera"].iloc[0]) if len(_wrong) else dataset.meta.video_keys[0], label="camera")
    position = mo.ui.dropdown(options=["first", "middle", "last"], value="middle", label="frame")
    mo.hstack([episode, camera, position], justify="start")
    return camera, episode, position


@app.cell
def _(camera, dataset, episode, parity, position):
    _row = frame_rows(dataset, int(episode.value), [position.value])[position.value]
    _decoded = load_frame(dataset, _row, camera.value)
    _record = parity[(parity["episode_index"] == int(episode.value)) & (parity["camera"] == camera.value) & (parity["position"] == position.value)].iloc[0]
    _expected = expected_frames(_record, _decoded)
    _panels = {"decoded": _decoded}
    if _expected is not None:
        _panels["expected"] = _expected
    side_by_side = charts.frames_side_by_side(_panels)
    side_by_side
    return (side_by_side,)


@app.cell
def _(parity):
    table = parity.drop(columns=["camera_position"])
    table
    return (table,)


if __name__ == "__main__":
    app.run()
