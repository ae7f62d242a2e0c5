import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Delta-window padding")

with app.setup:
    import json

    import marimo as mo

    from lerobot_inspect import MapDataset, charts
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


@app.cell
def _():
    mo.md("""
    # Delta-window padding

    **What this shows:** for each `delta_timestamps` key and window slot, which frames get
    `<key>_is_pad = True`, computed by the loader's own window code. **How to read it:** orange
    cells must sit only at the start of the episode (negative offsets) or the end (positive
    offsets); a padded slot repeats the boundary frame, it is not zeros.
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
    _meta = DatasetMeta.open(dataset_root.value)
    delta_timestamps = json.loads(deltas_text.value) if deltas_text.value.strip() else default_deltas(_meta)
    dataset = MapDataset(_meta, delta_timestamps=delta_timestamps)
    table = padding_table(dataset)
    _bad = int((~table["at_edges"]).sum())
    verdict = (f"pads only at episode edges ({int(table['padded'].sum())} padded slots)" if _bad == 0
               else f"{_bad} window slots pad away from episode edges")
    verdict_level = "ok" if _bad == 0 else "error"
    mo.md(f"**Verdict:** {verdict}. `delta_timestamps = {json.dumps(delta_timestamps)}`")
    return dataset, table, verdict, verdict_level


@app.cell
def _(dataset, knobs):
    _choices = [str(e) for e in dataset.episodes]
    _wanted = str(_choices[0] if knobs["episode"] is None else knobs["episode"])
    episode = mo.ui.dropdown(options=_choices, value=_wanted if _wanted in _choices else _choices[0], label="episode")
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
    summary_chart = charts.padding_summary(table)
    summary_chart
    return (summary_chart,)


@app.cell
def _(table):
    table
    return


if __name__ == "__main__":
    app.run()
