import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Shuffle mixing")

with app.setup:
    import marimo as mo
    import numpy as np
    import pandas as pd

    from lerobot_inspect import charts
    from lerobot_inspect.loaders.streaming import open_stream
    from lerobot_inspect.probes.mixing import (
        batch_episode_ids,
        loader_batches,
        randomness_fraction,
        reservoir_shuffle_order,
    )
    from lerobot_inspect.report.knobs import notebook_knobs




@app.function
def batches_table(pipeline: str, episode_ids: np.ndarray, batch_size: int) -> pd.DataFrame:
    """One row per sample of full batches: (pipeline, batch, episode_index)."""
    batched = batch_episode_ids(np.asarray(episode_ids), batch_size=batch_size)
    return pd.DataFrame({"pipeline": pipeline, "batch": np.repeat(np.arange(batched.shape[0]), batch_size),
                         "episode_index": batched.ravel()})


@app.function
def auto_batches(mean_length: float, *, pool_size: int, batch_size: int, turnovers: int = 8) -> int:
    """Batches that cover about `turnovers` turnovers of the episode pool (pool_size episodes of
    mean_length frames each), between 32 and 1,000: fewer show only the pool's first episodes,
    whatever the shuffle does."""
    import math

    wanted = math.ceil(turnovers * pool_size * max(mean_length, 1.0) / max(batch_size, 1))
    return int(min(1000, max(32, wanted)))


@app.cell
def _():
    mo.md("""
    # Shuffle mixing

    **What this shows:** which episodes each batch draws from when the streaming dataset (the
    pipeline you choose) runs inside a real torch `DataLoader` with your batch size and workers,
    as rank 0 of `world size`, next to LeRobot's frame reservoir over a sequential stream.
    **How to read it:** the randomness fraction is the mean share of distinct episodes per batch
    (1.0 = every sample from a different episode); a diagonal band in the heatmap means batches
    came from few neighbouring episodes. By default the page draws enough batches to see the pool
    turn over about 8 times (hundreds of samples); the verdict says how many it drew.
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    _knobs = notebook_knobs("mixing", args)
    dataset_root = mo.ui.text(value=_knobs["dataset"], label="dataset root", full_width=True)
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=_knobs["seed"], label="seed")
    pool_size = mo.ui.number(start=1, stop=4096, value=_knobs["pool_size"], label="pool size (episodes)")
    batch_size = mo.ui.number(start=1, stop=4096, value=_knobs["batch_size"], label="batch size")
    workers = mo.ui.number(start=0, stop=64, value=_knobs["workers"], label="workers")
    world_size = mo.ui.number(start=1, stop=1024, value=_knobs["world_size"], label="world size")
    buffer_size = mo.ui.number(start=1, stop=100000, value=_knobs["buffer_size"], label="reservoir buffer (frames)")
    pipeline = mo.ui.dropdown(options=["pool", "datasets"], value=_knobs["pipeline"].split(",")[0], label="pipeline")
    batches = mo.ui.number(start=0, stop=10000, value=_knobs["batches"] or 0, label="batches to draw (0 = auto)")
    run = mo.ui.run_button(label="Draw batches")
    mo.vstack([dataset_root, mo.hstack([pipeline, seed, pool_size, batch_size, workers, world_size, batches, buffer_size], justify="start", wrap=True), run])
    return args, batch_size, batches, buffer_size, dataset_root, pipeline, pool_size, run, seed, workers, world_size


@app.cell
def _(args, batch_size, batches, buffer_size, dataset_root, pipeline, pool_size, run, seed, workers, world_size):
    unavailable = ""  # every probe this page needs ships with the package
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Draw batches**."))
    label = f"{pipeline.value} pipeline, {int(workers.value)} worker(s)"
    _batch = int(batch_size.value)
    # Video is left out (decode_video=False): the schedule, hence the batches, is the same, minus the decoding.
    stream = open_stream(dataset_root.value, pipeline=pipeline.value, seed=int(seed.value),
                              pool_size=int(pool_size.value), world_size=int(world_size.value), rank=0,
                              batch_size=_batch, decode_video=False)
    _mean_length = float(stream.meta.lengths[stream.selected_episodes].mean())
    _n_batches = int(batches.value) or auto_batches(_mean_length, pool_size=int(pool_size.value), batch_size=_batch)
    with mo.status.spinner(title=f"Drawing {_n_batches} batches through a DataLoader", remove_on_exit=True):
        drawn = loader_batches(stream, batch_size=_batch, num_workers=int(workers.value), max_batches=_n_batches)
    _ours = drawn["episode_index"].to_numpy()
    _sequential = np.repeat(stream.selected_episodes, stream.meta.lengths[stream.selected_episodes])
    _order = reservoir_shuffle_order(len(_sequential), buffer_size=int(buffer_size.value), seed=int(seed.value))
    _reference = _sequential[_order][: len(_ours)]
    samples = pd.concat([batches_table(label, _ours, _batch), batches_table("LeRobot reservoir", _reference, _batch)],
                        ignore_index=True)
    randomness = {name: randomness_fraction(batch_episode_ids(group["episode_index"].to_numpy(), batch_size=_batch))
                  for name, group in samples.groupby("pipeline", sort=False)}
    verdict_level = "ok" if randomness[label] >= randomness["LeRobot reservoir"] else "warning"
    # The words carry the level: a warning says what it warns about (and what to turn).
    verdict = (f"randomness {randomness[label]:.2f} ({label}) "
               + ("at or above" if verdict_level == "ok" else "BELOW")
               + f" LeRobot reservoir {randomness['LeRobot reservoir']:.2f}"
               + ("" if verdict_level == "ok" else "; a larger pool size mixes more episodes per batch"))
    _touched = int(drawn["episode_index"].nunique())
    mo.md(f"**Verdict:** {verdict}.  \nDrawn: {drawn['batch'].nunique()} batches of {_batch} = {len(drawn)} samples on "
          f"rank 0 of {int(world_size.value)}, from {_touched} of {len(stream.selected_episodes)} episodes "
          f"(pool of {int(pool_size.value)}, mean episode {_mean_length:.0f} frames"
          + (", batch count chosen automatically" if not int(batches.value) else "") + ").")
    return drawn, label, randomness, samples, unavailable, verdict, verdict_level


@app.cell
def _(label, randomness, samples):
    chart = charts.batch_episode_heatmap(samples[samples["pipeline"] == label], randomness=randomness[label], label=label)
    chart
    return (chart,)


@app.cell
def _(randomness, samples):
    reference_chart = charts.batch_episode_heatmap(samples[samples["pipeline"] == "LeRobot reservoir"],
                                                   randomness=randomness["LeRobot reservoir"], label="LeRobot reservoir")
    reference_chart
    return (reference_chart,)


if __name__ == "__main__":
    app.run()
