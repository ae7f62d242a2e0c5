import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Delta-window padding")

with app.setup:
    import json

    import marimo as mo
    import pandas as pd

    from lerobot_inspect import LeRobotInspectError, MapDataset, charts
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.probes.padding import padding_frames, padding_table
    from lerobot_inspect.report.knobs import notebook_knobs



@app.function
def default_deltas(meta: DatasetMeta) -> dict:
    """A typical policy window: two past frames of the first camera, a short action chunk."""
    fps = meta.fps
    deltas = {}
    if meta.video_keys:
        deltas[meta.video_keys[0]] = [round(-2 / fps, 6), round(-1 / fps, 6), 0.0]
    if "action" in meta.features:
        deltas["action"] = [round(k / fps, 6) for k in range(0, 5)]
    return deltas


@app.function
def slot_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (key, slot) over all episodes: padded frames, and how many episodes pad away
    from their edges (worst slots first). The per-episode table has episodes x slots rows; this
    one has a row per slot at any dataset size."""
    grouped = table.groupby(["key", "slot", "offset_frames"], as_index=False).agg(
        delta_s=("delta_s", "first"), episodes=("episode_index", "nunique"), padded_frames=("padded", "sum"),
        episodes_not_at_edges=("at_edges", lambda ok: int((~ok).sum())))
    return grouped.sort_values(["episodes_not_at_edges", "key", "slot"], ascending=[False, True, True])


@app.cell
def _():
    mo.md("""
    # Delta-window padding

    **What this shows:** for each `delta_timestamps` key and window slot, which frames get
    `<key>_is_pad = True`, computed by the loader's own window code. **How to read it:** orange
    cells must sit only at the start of the episode (negative offsets) or the end (positive
    offsets); a padded slot repeats the boundary frame, it is not zeros. The timeline shows one
    episode (choose it below); the bar chart and the table sum every episode, slot by slot, and list
    any episode that pads away from its edges.
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    knobs = notebook_knobs("padding", args)
    dataset_root = mo.ui.text(value=knobs["dataset"], label="dataset root", full_width=True)
    deltas_text = mo.ui.text_area(value=knobs["delta_timestamps"] or "", label="delta_timestamps (JSON; empty = a typical window)", full_width=True)
    run = mo.ui.run_button(label="Compute padding")
    mo.vstack([dataset_root, deltas_text, run])
    return args, dataset_root, deltas_text, knobs, run


@app.cell
def _(args, dataset_root, deltas_text, run):
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Compute padding**."))
    dataset, table, delta_timestamps = None, None, None
    # A refused window (an off-grid delta, a key the dataset lacks, bad JSON) shows here with its fix,
    # not only in the server log.
    _meta = DatasetMeta.open(dataset_root.value)  # an unreadable dataset fails the page with its own message
    try:
        delta_timestamps = json.loads(deltas_text.value) if deltas_text.value.strip() else default_deltas(_meta)
        dataset = MapDataset(_meta, delta_timestamps=delta_timestamps)
        with mo.status.spinner(title=f"Computing windows of {dataset.num_episodes} episodes", remove_on_exit=True):
            table = padding_table(dataset)
    except json.JSONDecodeError as _exc:
        verdict, verdict_level = f"delta_timestamps is not JSON: {_exc}", "error"
        _shown = mo.callout(mo.md(f"**delta_timestamps is not valid JSON:** {_exc}.  \n**Fix:** write an object "
                                  'of lists of seconds, e.g. `{"action": [0.0, 0.0333]}`.'), kind="danger")
    except (LeRobotInspectError, ValueError, TypeError) as _exc:
        verdict, verdict_level = f"delta_timestamps refused: {type(_exc).__name__}: {_exc}", "error"
        _shown = mo.callout(mo.md(f"**The loader refuses these `delta_timestamps`** ({type(_exc).__name__}):  \n"
                                  f"{_exc}"), kind="danger")
    else:
        _bad = int((~table["at_edges"]).sum())
        verdict = (f"pads only at episode edges ({int(table['padded'].sum())} padded slots over "
                   f"{dataset.num_episodes} episodes)" if _bad == 0
                   else f"{_bad} (episode, slot) windows pad away from episode edges")
        verdict_level = "ok" if _bad == 0 else "error"
        _shown = mo.md(f"**Verdict:** {verdict}. `delta_timestamps = {json.dumps(delta_timestamps)}`")
    _shown
    return dataset, table, verdict, verdict_level


@app.cell
def _(dataset, knobs):
    mo.stop(dataset is None)
    _choices = [str(e) for e in dataset.episodes]
    _wanted = str(_choices[0] if knobs["episode"] is None else knobs["episode"])
    _wanted = _wanted if _wanted in _choices else _choices[0]
    # A dropdown of 10,000 episodes is unusable: past 200, type the episode number.
    episode = (mo.ui.dropdown(options=_choices, value=_wanted, label="episode") if len(_choices) <= 200 else
               mo.ui.number(start=int(_choices[0]), stop=int(_choices[-1]), value=int(_wanted), label="episode"))
    episode
    return (episode,)


@app.cell
def _(dataset, episode):
    frames_table = padding_frames(dataset, int(episode.value))
    chart = charts.padding_timeline(frames_table)
    chart
    return chart, frames_table


@app.cell
def _(table):
    mo.stop(table is None)
    summary_chart = charts.padding_summary(table)
    summary_chart
    return (summary_chart,)


@app.cell
def _(table):
    mo.stop(table is None)
    slots = slot_summary(table)
    slots
    return (slots,)


@app.cell
def _(table):
    mo.stop(table is None or bool(table["at_edges"].all()))
    problems = table[~table["at_edges"]].sort_values(["episode_index", "key", "slot"])
    problems
    return (problems,)


if __name__ == "__main__":
    app.run()
