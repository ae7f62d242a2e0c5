"""What the data rows hold, checked without I/O: non-finite and null values, spikes, frozen
state/action, per-episode and dataset stats against the rows, declared shapes, task indices and the
episode ranges of meta/episodes.

Everything here takes Arrow tables and numpy arrays and returns `Finding`s, so each check can be
tested (and property-tested) on arrays; `format.content_audit` does the reading. Each fault gives one
finding at the level that explains it: an episode whose `action` holds NaN is one `non-finite-values`
finding, and its stats, spikes and dataset stats are not checked again (they cannot agree).

Defaults (`ContentThresholds`), chosen to give no finding on datasets LeRobot writes, episodes of
one to three frames included, and documented in docs/audit_json.md:
- spike: frame t of a state/action dimension is a spike when the steps into and out of it go in
  opposite directions and both exceed max(20 x the dimension's robust step scale (1.4826 x MAD of
  its within-episode steps, over the whole dataset), 0.5 x the dimension's robust range (q99 - q01
  of its values), 2 x the largest step of the median episode). A real movement, however fast, steps
  one way; a gripper that opens and closes stays within its range; a quantized servo flickering by
  one tick flickers in every episode. Frames 0 and length-1 have one step only and are never
  spikes; with fewer than 3 episodes a glitch can set the norm it is compared with.
- constant span: a state/action dimension repeats exactly the same value over >= 15 frames while
  the dimension rarely stands still (in the median episode, at most 5% of its steps are zero): a
  stale sensor or a stuck teleop stream. Dimensions that often stand still (quantized servos at rest,
  grippers) are left alone.
- stats: min/max equal within 1e-6 relative, mean within 1e-4 x (|mean| + std), std within 1e-3 x std
  (+ 1e-6 x |mean|), count exact. Quantiles are not compared (LeRobot approximates them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lerobot_inspect.format.meta import DEFAULT_FEATURES
from lerobot_inspect.format.validate import Finding

__all__ = [
    "NUMERIC_DTYPES",
    "ColumnValues",
    "ContentAudit",
    "ContentThresholds",
    "column_values",
    "constant_runs",
    "dimension_label",
    "drop_explained",
    "episode_range_findings",
    "is_motion_feature",
    "robust_step_scale",
    "spike_frames",
    "stats_close",
]

NUMERIC_DTYPES = frozenset({"bool", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
                            "uint8", "uint16", "uint32", "uint64"})
COMPARED_STATS = ("min", "max", "mean", "std", "count")


@dataclass(frozen=True)
class ContentThresholds:
    """The documented defaults of the content checks (see the module docstring)."""

    spike_step_k: float = 20.0
    spike_range_fraction: float = 0.5
    spike_largest_step_k: float = 2.0
    constant_min_frames: int = 15
    constant_max_still_fraction: float = 0.05
    minmax_rtol: float = 1e-6
    mean_rtol: float = 1e-4
    std_rtol: float = 1e-3
    max_findings_per_kind: int = 20


def is_motion_feature(name: str) -> bool:
    """State and action features, where spikes and frozen spans mean a glitch (`observation.state*`,
    `action*`); rewards, done flags and environment state may legitimately stand still or jump."""
    return name == "action" or name.startswith("action.") or name.startswith("observation.state")


def dimension_label(names: Any, dim: int) -> str:
    """'dimension 3 (elbow)' from info.json names (a list, or a dict of lists), else 'dimension 3'."""
    flat = names
    if isinstance(names, Mapping):
        flat = next((v for v in names.values() if isinstance(v, list)), None)
    if isinstance(flat, list) and dim < len(flat):
        return f"dimension {dim} ({flat[dim]})"
    return f"dimension {dim}"


# ---------------------------------------------------------------------- Arrow -> numpy
@dataclass
class ColumnValues:
    """One numeric column as (rows, dims) float64 with NaN where null, the null mask, and the
    per-row value counts (for variable-length lists; None when every row has `dims` values)."""

    values: np.ndarray
    null: np.ndarray
    widths: np.ndarray | None = None


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _flat_values(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and null mask of a flat numeric/bool Arrow array."""
    null = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_boolean(array.type):
        filled = pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        filled = pc.fill_null(array, 0).to_numpy(zero_copy_only=False).astype(np.float64)
    filled[null] = np.nan
    return filled, null


def column_values(column: pa.ChunkedArray | pa.Array, dims: int) -> ColumnValues | None:
    """Scalar columns, fixed-size lists and lists of numbers; None for other types (images, nested
    arrays), which these checks leave alone. Variable-length lists keep their per-row widths so the
    shape check can name them; their values are then only checked for nulls and non-finite."""
    values, nulls, widths = [], [], []
    for chunk in _chunks(column):
        kind = chunk.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            v, n = _flat_values(chunk)
            values.append(v[:, None])
            nulls.append(n[:, None])
            widths.append(np.ones(len(chunk), dtype=np.int64))
            continue
        if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
            return None
        inner = kind.value_type
        if not (pa.types.is_integer(inner) or pa.types.is_floating(inner) or pa.types.is_boolean(inner)):
            return None
        row_null = np.asarray(chunk.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if pa.types.is_fixed_size_list(kind):
            size = kind.list_size
            child = chunk.values.slice(chunk.offset * size, len(chunk) * size)
            v, n = _flat_values(child)
            v, n = v.reshape(len(chunk), size), n.reshape(len(chunk), size)
            w = np.full(len(chunk), size, dtype=np.int64)
        else:
            w = np.asarray(pc.list_value_length(chunk).to_numpy(zero_copy_only=False), dtype=np.float64)
            w = np.nan_to_num(w, nan=0).astype(np.int64)
            uniform = len(w) > 0 and bool((w == w[0]).all())
            width = int(w[0]) if uniform else dims  # equal lengths: the shape check compares the width
            v = np.full((len(chunk), width), np.nan)
            n = np.zeros((len(chunk), width), dtype=bool)
            flat, flat_null = _flat_values(pc.list_flatten(chunk))
            starts = np.concatenate([[0], np.cumsum(w)[:-1]]) if len(w) else w
            for row in np.flatnonzero(w == width).tolist():
                v[row] = flat[starts[row]:starts[row] + width]
                n[row] = flat_null[starts[row]:starts[row] + width]
        v[row_null] = np.nan
        n[row_null] = True
        values.append(v)
        nulls.append(n)
        widths.append(w)
    if not values:
        return ColumnValues(np.zeros((0, max(dims, 1))), np.zeros((0, max(dims, 1)), dtype=bool))
    width = max(v.shape[1] for v in values)
    if any(v.shape[1] != width for v in values):
        return None
    all_widths = np.concatenate(widths)
    return ColumnValues(np.concatenate(values), np.concatenate(nulls),
                        None if (all_widths == width).all() else all_widths)


# ---------------------------------------------------------------------- pure statistics
def robust_step_scale(steps: np.ndarray) -> float:
    """1.4826 x median absolute deviation of the finite steps (a Gaussian's sigma; 0 when most
    steps are equal)."""
    finite = steps[np.isfinite(steps)]
    if finite.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(finite - np.median(finite))))


def spike_frames(x: np.ndarray, threshold: float) -> np.ndarray:
    """Frames t (1 <= t <= len-2) of one episode's 1-D series whose steps in and out go in
    opposite directions and both exceed `threshold`."""
    if x.shape[0] < 3:
        return np.zeros(0, dtype=np.int64)
    step_in = x[1:-1] - x[:-2]
    step_out = x[2:] - x[1:-1]
    with np.errstate(invalid="ignore"):
        spike = (step_in * step_out < 0) & (np.abs(step_in) > threshold) & (np.abs(step_out) > threshold)
    return np.flatnonzero(spike) + 1


def constant_runs(x: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """[start, stop) frame spans of one 1-D series where the value repeats exactly, at least
    `min_frames` long (NaN never counts as a repeat)."""
    if x.shape[0] < max(2, min_frames):
        return []
    same = x[1:] == x[:-1]
    if not same.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[False], same, [False]]).astype(np.int8)))
    first, last = edges[::2], edges[1::2]  # same[first:last] is True: frames first..last repeat
    keep = last - first + 1 >= min_frames
    return [(int(a), int(b) + 1) for a, b in zip(first[keep], last[keep], strict=True)]


def stats_close(stat: str, stored: np.ndarray, computed: np.ndarray, *, mean: np.ndarray, std: np.ndarray,
                thresholds: ContentThresholds = ContentThresholds()) -> np.ndarray:
    """Per-dimension agreement of one stored statistic with the one computed from the rows;
    `mean`/`std` are the computed ones (they scale the tolerances)."""
    stored = np.asarray(stored, dtype=np.float64)
    computed = np.asarray(computed, dtype=np.float64)
    if stored.shape != computed.shape:
        return np.zeros(computed.shape, dtype=bool)
    diff = np.abs(stored - computed)
    if stat in ("min", "max"):
        tol = thresholds.minmax_rtol * np.maximum(1.0, np.maximum(np.abs(stored), np.abs(computed)))
    elif stat == "mean":
        tol = thresholds.mean_rtol * (np.abs(mean) + std) + 1e-9
    elif stat == "std":
        tol = thresholds.std_rtol * std + 1e-6 * np.abs(mean) + 1e-9
    else:
        tol = np.zeros_like(diff)
    with np.errstate(invalid="ignore"):
        return diff <= tol


def _episode_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    return {"min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
            "std": values.std(axis=0), "count": np.array([values.shape[0]], dtype=np.float64)}


def _stats_by_episode(values: np.ndarray, bounds: np.ndarray) -> dict[str, np.ndarray]:
    """`_episode_stats` of every episode of a file at once (rows [bounds[k], bounds[k+1]) per episode);
    episodes without rows get NaN."""
    counts = np.diff(bounds).astype(np.float64)
    starts = bounds[:-1]
    nonempty = counts > 0
    dims = values.shape[1]
    out = {stat: np.full((len(counts), dims), np.nan) for stat in ("min", "max", "mean", "std")}
    if values.shape[0] and nonempty.any():
        at = starts[nonempty]
        n = counts[nonempty][:, None]
        out["min"][nonempty] = np.minimum.reduceat(values, at, axis=0)
        out["max"][nonempty] = np.maximum.reduceat(values, at, axis=0)
        mean = np.add.reduceat(values, at, axis=0) / n
        out["mean"][nonempty] = mean
        centered = values - np.repeat(mean, counts[nonempty].astype(np.int64), axis=0)
        out["std"][nonempty] = np.sqrt(np.add.reduceat(centered * centered, at, axis=0) / n)
    out["count"] = counts[:, None]
    return out


def _aggregate(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    total = counts.sum()
    means = np.stack([s["mean"] for s in per_episode])
    mean = counts @ means / total
    second = counts @ (np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2) / total
    return {"min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
            "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
            "mean": mean, "std": np.sqrt(second), "count": np.array([total])}


# ---------------------------------------------------------------------- episode ranges
def episode_range_findings(starts: np.ndarray, stops: np.ndarray, lengths: np.ndarray, *,
                           where: str) -> list[Finding]:
    """dataset_from_index / dataset_to_index / length of meta/episodes: reversed ranges, ranges that
    swapped places, gaps and overlaps between neighbours, and lengths that disagree; every finding
    names every episode involved (`episodes`).

    A range permutation (the ranges tile [0, total) but not in episode order) is one
    `episode-ranges-swapped`; a gap or an overlap that also explains an episode's length mismatch
    (one edited bound) is one finding, not two."""
    starts, stops, lengths = (np.asarray(a, dtype=np.int64) for a in (starts, stops, lengths))
    out: list[Finding] = []
    n = len(lengths)
    if n == 0:
        return out
    fix_rewrite = "rewrite dataset_from_index / dataset_to_index in meta/episodes from the data files " \
                  "(cumulative sums of the lengths, in episode order)"
    reversed_eps = np.flatnonzero(stops < starts)
    if reversed_eps.size:
        eps = reversed_eps.tolist()
        out.append(Finding(
            "error", "episode-range-reversed",
            f"dataset_to_index < dataset_from_index for episode(s) {_list(eps)} "
            f"(episode {eps[0]}: [{int(starts[eps[0]])}, {int(stops[eps[0]])}))",
            fix="swap dataset_from_index and dataset_to_index of these episodes", file=where,
            episode=eps[0], episodes=tuple(eps)))
        return out
    expected_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    expected_stops = expected_starts + lengths
    misplaced = np.flatnonzero((starts != expected_starts) | (stops != expected_stops))
    order = np.argsort(starts, kind="stable")
    tiles = (starts[order][0] == 0 and bool(np.all(starts[order][1:] == stops[order][:-1]))
             and int(stops[order][-1]) == int(lengths.sum()))
    if misplaced.size >= 2 and tiles and not np.array_equal(order, np.arange(n)) and \
            sorted((stops - starts).tolist()) == sorted(lengths.tolist()):
        eps = misplaced.tolist()
        detail = ", ".join(f"episode {e} has [{int(starts[e])}, {int(stops[e])}) but its rows are "
                           f"[{int(expected_starts[e])}, {int(expected_stops[e])})" for e in eps[:6])
        out.append(Finding(
            "error", "episode-ranges-swapped",
            f"the episode ranges are a permutation of the right ones: {detail}; a loader reading "
            f"episode {eps[0]} gets another episode's rows", fix=fix_rewrite, file=where,
            episode=eps[0], episodes=tuple(eps)))
        return out
    bad_length = set(np.flatnonzero(stops - starts != lengths).tolist())
    explained: set[int] = set()
    gaps, overlaps = [], []
    previous_stop = 0
    for k in range(n):
        delta = int(starts[k]) - previous_stop
        if delta:
            pair = (k - 1, k) if k else (k,)
            moved = pair[-1]  # the episode whose bound moved, when its length mismatch says so
            for e in reversed(pair):
                if e in bad_length and abs(int(stops[e] - starts[e] - lengths[e])) == abs(delta):
                    explained.add(e)
                    moved = e
                    break
            (gaps if delta > 0 else overlaps).append((pair, delta, moved))
        previous_stop = int(stops[k])
    for code, items, what in (("episode-ranges-gap", gaps, "leaves a gap of"),
                              ("episode-ranges-overlap", overlaps, "overlaps by")):
        if not items:
            continue
        eps = sorted({e for pair, _, _ in items for e in pair})
        detail = "; ".join(
            (f"episode {pair[-1]} starts at {int(starts[pair[-1]])}, after episode {pair[0]} ends at "
             f"{int(stops[pair[0]])}: {what} {abs(delta)} rows" if len(pair) == 2 else
             f"episode 0 starts at {int(starts[0])}, not 0") for pair, delta, _ in items[:6])
        out.append(Finding("error", code, f"{detail} (episodes involved: {_list(eps)})", fix=fix_rewrite,
                           file=where, episode=items[0][2], episodes=tuple(eps)))
    left = sorted(bad_length - explained)
    if left:
        out.append(Finding(
            "error", "episode-length-mismatch",
            "dataset_to_index - dataset_from_index differs from length for episode(s) "
            f"{_list(left)} (episode {left[0]}: {int(stops[left[0]] - starts[left[0]])} vs "
            f"{int(lengths[left[0]])})", fix="rewrite meta/episodes from the data files", file=where,
            episode=left[0], episodes=tuple(left)))
    return out


def _list(items: Sequence[int], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def drop_explained(findings: list[Finding]) -> list[Finding]:
    """Drop findings another finding already explains, so one fault stays one finding:
    - data-row findings about `index` for episodes a meta/episodes range finding names (the rows are
      right, the ranges are not);
    - spikes, frozen spans and stats mismatches of episodes whose rows are out of order or belong to
      another episode (jumps between shuffled rows are the disorder, not a glitch)."""
    ranged = {e for f in findings if f.code.startswith("episode-range") or f.code == "episode-length-mismatch"
              for e in (f.episodes or (() if f.episode is None else (f.episode,)))}
    disordered = {f.episode for f in findings if f.code in ("frames-out-of-order", "wrong-episode-rows")}
    if not ranged and not disordered:
        return findings
    out = []
    for f in findings:
        if f.code in ("index-not-contiguous", "wrong-episode-rows") and f.episode in ranged \
                and f.file is not None and "/data/" in f.file:
            continue
        if f.code in ("value-spike", "constant-span") and f.episode in disordered:
            continue
        if f.code == "episode-stats-mismatch" and set(f.episodes or (f.episode,)) <= disordered:
            continue
        out.append(f)
    return out


# ---------------------------------------------------------------------- the accumulating audit
@dataclass
class _FeatureSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]
    names: Any = None


@dataclass
class ContentAudit:
    """Feed it each data file's numeric columns (`add_file`), then `finish` with the stored stats.

    Per-file findings (nulls, non-finite values, NaN timestamps, task indices, shapes) come back from
    `add_file`; dataset-wide ones (spikes, frozen spans, stats) from `finish`, because their robust
    thresholds and aggregates need every episode."""

    features: Mapping[str, Any]
    num_tasks: int
    num_episodes: int
    info_file: str = "meta/info.json"
    thresholds: ContentThresholds = field(default_factory=ContentThresholds)

    def __post_init__(self) -> None:
        self.specs = {
            name: _FeatureSpec(name, str(f.dtype), tuple(int(s) for s in f.shape), getattr(f, "names", None))
            for name, f in self.features.items() if str(f.dtype) in NUMERIC_DTYPES}
        # The id columns (index, frame_index, timestamp, ...) are checked row by row against
        # meta/episodes by `validate`; comparing their stats too would report one fault twice.
        self.stats_checked = [name for name in self.specs if name not in DEFAULT_FEATURES]
        self.stats: dict[str, dict[int, dict[str, np.ndarray]]] = {name: {} for name in self.specs}
        self.unclean: dict[str, set[int]] = {name: set() for name in self.specs}
        self.motion: dict[str, dict[int, np.ndarray]] = {name: {} for name in self.specs if is_motion_feature(name)}
        self.episode_file: dict[int, str] = {}
        self.shape_flagged: set[str] = set()
        self._counts: dict[tuple[str, str], int] = {}

    @property
    def columns(self) -> list[str]:
        """The data columns `add_file` needs: the numeric features."""
        return list(self.specs)

    def _capped(self, code: str, feature: str) -> bool:
        key = (code, feature)
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key] > self.thresholds.max_findings_per_kind

    # ------------------------------------------------------------------ per file
    def add_file(self, shown: str, table: pa.Table, episodes: Sequence[int], lengths: Sequence[int]) -> list[Finding]:
        """Check one data file whose rows hold `episodes` (in order) with these `lengths`."""
        out: list[Finding] = []
        episodes = [int(e) for e in episodes]
        lengths = np.asarray(lengths, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for e in episodes:
            self.episode_file[e] = shown
        for name, spec in self.specs.items():
            if name not in table.column_names:
                continue
            declared = int(np.prod(spec.shape)) if spec.shape else 1
            if len(spec.shape) > 1:
                continue  # Array2D..5D: left to the loader
            column = column_values(table.column(name), declared)
            if column is None:
                continue
            if self._shape_problem(out, shown, name, spec, column, episodes, bounds):
                continue
            clean = not column.null.any() and bool(np.isfinite(column.values).all())
            file_stats = _stats_by_episode(column.values, bounds) if clean and name in self.stats_checked else None
            for k, episode in enumerate(episodes):
                rows = slice(int(bounds[k]), int(bounds[k + 1]))
                values, null = column.values[rows], column.null[rows]
                if not clean and self._value_problems(out, shown, name, spec, episode, values, null):
                    self.unclean[name].add(episode)
                    continue
                if values.shape[0] and name in self.stats_checked:
                    self.stats[name][episode] = (
                        {stat: v[k] for stat, v in file_stats.items()} if file_stats is not None
                        else _episode_stats(values))
                if name in self.motion:
                    self.motion[name][episode] = values.astype(np.float64, copy=False)
                if name == "task_index":
                    self._task_range(out, shown, episode, values[:, 0])
        return out

    def _shape_problem(self, out: list[Finding], shown: str, name: str, spec: _FeatureSpec, column: ColumnValues,
                       episodes: list[int], bounds: np.ndarray) -> bool:
        declared = spec.shape[0] if spec.shape else 1
        if column.widths is not None:
            bad = np.flatnonzero(column.widths != declared)
            row = int(bad[0]) if bad.size else 0
            k = int(np.searchsorted(bounds, row, side="right")) - 1
            episode = episodes[min(max(k, 0), len(episodes) - 1)]
            if not self._capped("feature-shape-mismatch", name):
                out.append(Finding(
                    "error", "feature-shape-mismatch",
                    f"feature {name!r} is declared with shape {list(spec.shape)} but row {row} (frame "
                    f"{row - int(bounds[max(k, 0)])}) holds {int(column.widths[row])} values",
                    fix="rewrite the rows with the declared number of values, or fix the shape in meta/info.json",
                    file=shown, episode=episode, feature=name, frame=row - int(bounds[max(k, 0)])))
            return True
        width = column.values.shape[1]
        if width != declared:
            if name not in self.shape_flagged:
                self.shape_flagged.add(name)
                out.append(Finding(
                    "error", "feature-shape-mismatch",
                    f"info.json declares {name!r} with shape {list(spec.shape)} but the rows of {shown} hold "
                    f"{width} value(s) per frame; LeRobot and this loader return the rows' shape, so a model "
                    "built from info.json gets tensors of the wrong size",
                    fix=f"set features[{name!r}].shape to [{width}] in meta/info.json (or rewrite the data)",
                    file=self.info_file, feature=name))
            return True
        return False

    def _value_problems(self, out: list[Finding], shown: str, name: str, spec: _FeatureSpec, episode: int,
                        values: np.ndarray, null: np.ndarray) -> bool:
        """Nulls, then NaN/inf; True when the episode's values of this feature are not all finite."""
        problem = False
        if null.any():
            problem = True
            frames, dims = np.nonzero(null)
            if not self._capped("null-values", name):
                out.append(Finding(
                    "error", "null-values",
                    f"{int(null.sum())} null value(s) in {name!r} of episode {episode} (first at frame "
                    f"{int(frames[0])}, {dimension_label(spec.names, int(dims[0]))}); LeRobot 0.6 fails on them "
                    "with \"Could not infer dtype of NoneType\" and this loader refuses them",
                    fix="re-record or drop the episode, or fill the gaps and recompute its stats",
                    file=shown, episode=episode, feature=name, frame=int(frames[0]), dimension=int(dims[0])))
        bad = ~np.isfinite(values) & ~null
        if bad.any():
            problem = True
            frames, dims = np.nonzero(bad)
            n_nan = int(np.isnan(values[bad]).sum())
            n_inf = int(bad.sum()) - n_nan
            what = ", ".join(part for part in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} +-inf" if n_inf else "")
                             if part)
            if name == "timestamp":
                code, consequence = "nan-timestamp", "the frame cannot be matched to video; the loader refuses it"
                fix = "recompute timestamp = frame_index / fps"
            else:
                code, consequence = "non-finite-values", "the loader returns them as they are and training " \
                                                         "gets NaN losses"
                fix = "re-record or drop the episode, or repair the values and recompute its stats"
            if not self._capped(code, name):
                out.append(Finding(
                    "error", code,
                    f"{what} in {name!r} of episode {episode} over {len(np.unique(frames))} of {values.shape[0]} "
                    f"frames (first at frame {int(frames[0])}, {dimension_label(spec.names, int(dims[0]))}); "
                    f"{consequence}", fix=fix, file=shown, episode=episode, feature=name,
                    frame=int(frames[0]), dimension=int(dims[0])))
        return problem

    def _task_range(self, out: list[Finding], shown: str, episode: int, task_index: np.ndarray) -> None:
        bad = np.flatnonzero((task_index < 0) | (task_index >= self.num_tasks))
        if bad.size and not self._capped("task-index-out-of-range", "task_index"):
            values = sorted({int(v) for v in task_index[bad]})
            out.append(Finding(
                "error", "task-index-out-of-range",
                f"task_index {_list(values, 5)} in {bad.size} frame(s) of episode {episode} (first at frame "
                f"{int(bad[0])}) but meta/tasks.parquet has {self.num_tasks} task(s) (0..{self.num_tasks - 1}); "
                "a negative index silently picks a task from the end of the table",
                fix="set task_index to the row of the episode's task in meta/tasks.parquet",
                file=shown, episode=episode, feature="task_index", frame=int(bad[0])))

    # ------------------------------------------------------------------ dataset-wide
    def finish(self, *, episode_stats: Mapping[str, Mapping[str, np.ndarray]] | None = None,
               episodes_file: str = "meta/episodes", stats_json: Any = None, stats_problem: str | None = None,
               stats_file: str = "meta/stats.json") -> list[Finding]:
        """Spikes and frozen spans over every episode; stored per-episode stats (`episode_stats`:
        feature -> stat -> (episodes, dims) array, NaN where absent) and stats.json (`stats_json`
        parsed, or `stats_problem` saying why it is missing or unreadable; neither: not checked)
        against the rows."""
        out: list[Finding] = []
        for name in self.motion:
            out.extend(self._motion_findings(name))
        if episode_stats is not None:
            out.extend(self._episode_stats_findings(episode_stats, episodes_file))
        if stats_json is not None or stats_problem is not None:
            out.extend(self._stats_json_findings(stats_json, stats_problem, stats_file))
        return out

    def _motion_findings(self, name: str) -> list[Finding]:
        spec, per_episode = self.specs[name], self.motion[name]
        if not per_episode:
            return []
        t = self.thresholds
        dims = next(iter(per_episode.values())).shape[1]
        all_values = np.concatenate(list(per_episode.values()))
        out: list[Finding] = []
        moving = [np.diff(v, axis=0) for v in per_episode.values() if v.shape[0] > 1]
        steps = np.concatenate(moving or [np.zeros((0, dims))])
        # Per episode: its largest step and its share of zero steps; the median episode is the norm.
        largest = np.median(np.stack([np.abs(m).max(axis=0) for m in moving]), axis=0) if moving else np.zeros(dims)
        still = np.median(np.stack([(m == 0).mean(axis=0) for m in moving]), axis=0) if moving else np.ones(dims)
        thresholds = np.zeros(dims)
        for d in range(dims):
            finite = all_values[:, d][np.isfinite(all_values[:, d])]
            spread = float(np.quantile(finite, 0.99) - np.quantile(finite, 0.01)) if finite.size else 0.0
            scale = robust_step_scale(steps[:, d])
            floor = 1e-6 * max(1.0, float(np.median(np.abs(finite)))) if finite.size else 1e-6
            thresholds[d] = max(t.spike_step_k * scale, t.spike_range_fraction * spread,
                                t.spike_largest_step_k * float(largest[d]), floor)
        for episode, values in sorted(per_episode.items()):
            spikes = [(int(f), d) for d in range(dims) for f in spike_frames(values[:, d], thresholds[d])]
            if spikes and not self._capped("value-spike", name):
                spikes.sort()
                frame, d = spikes[0]
                typical = float(values[frame - 1, d] + values[frame + 1, d]) / 2
                listed = ", ".join(f"frame {f} {dimension_label(spec.names, dd)}" for f, dd in spikes[:5])
                out.append(Finding(
                    "warning", "value-spike",
                    f"{name!r} of episode {episode} jumps for a single frame: {listed}"
                    f"{' and more' if len(spikes) > 5 else ''}; frame {frame} holds {float(values[frame, d]):.6g} "
                    f"between neighbours near {typical:.6g} (spike threshold {thresholds[d]:.6g}: the largest of "
                    f"{t.spike_step_k:g} x the usual step scale, {t.spike_range_fraction:g} x the value range and "
                    f"{t.spike_largest_step_k:g} x the largest step of a typical episode)",
                    fix="check the sensor or teleop stream at that frame; drop or repair the frame and recompute "
                    "the episode's stats", file=self.episode_file.get(episode), episode=episode, feature=name,
                    frame=frame, dimension=d))
            runs = [(start, stop, d) for d in range(dims) if still[d] <= t.constant_max_still_fraction
                    for start, stop in constant_runs(values[:, d], t.constant_min_frames)]
            if runs and not self._capped("constant-span", name):
                runs.sort(key=lambda r: (-(r[1] - r[0]), r[0], r[2]))
                start, stop, d = runs[0]
                frozen_dims = sorted({dd for s, e, dd in runs if s < stop and e > start})
                out.append(Finding(
                    "warning", "constant-span",
                    f"{name!r} of episode {episode} repeats the same value over frames {start}..{stop - 1} "
                    f"({stop - start} frames) in {len(frozen_dims)} of {dims} dimension(s) "
                    f"({', '.join(dimension_label(spec.names, dd) for dd in frozen_dims[:6])}), while these "
                    f"dimensions otherwise change at almost every frame: a frozen sensor or a stalled stream",
                    fix="check the recording of that span; drop the episode or the frozen frames",
                    file=self.episode_file.get(episode), episode=episode, feature=name, frame=start, dimension=d))
        return out

    def _episode_stats_findings(self, stored: Mapping[str, Mapping[str, np.ndarray]], where: str) -> list[Finding]:
        bad: dict[int, list[str]] = {}
        for name, per_episode in self.stats.items():
            if name not in stored:
                continue
            for episode, computed in per_episode.items():
                wrong = []
                for stat in COMPARED_STATS:
                    table = stored[name].get(stat)
                    if table is None or episode >= len(table):
                        continue
                    value = np.asarray(table[episode], dtype=np.float64)
                    if value.size == 0 or np.isnan(value).all():
                        continue
                    mine = computed[stat]
                    if value.shape != mine.shape and value.size == mine.size:
                        value = value.reshape(mine.shape)
                    if not stats_close(stat, value, mine, mean=computed["mean"], std=computed["std"],
                                       thresholds=self.thresholds).all():
                        wrong.append(stat)
                if wrong:
                    bad.setdefault(episode, []).append(f"{name} ({'/'.join(wrong)})")
        if not bad:
            return []
        by_file: dict[str | None, list[int]] = {}
        for episode in sorted(bad):
            by_file.setdefault(self.episode_file.get(episode), []).append(episode)
        out = []
        for data_file, eps in by_file.items():
            swapped = self._swapped_pairs(eps, stored)
            hint = ("; the rows of episodes " + ", ".join(f"{a} and {b}" for a, b in swapped)
                    + " match each other's stats: their rows were swapped") if swapped else ""
            detail = "; ".join(f"episode {e}: {', '.join(bad[e][:4])}" for e in eps[:6])
            out.append(Finding(
                "error", "episode-stats-mismatch",
                f"the per-episode stats in meta/episodes disagree with the rows of {data_file} for "
                f"episode(s) {_list(eps)} ({detail}){hint}; the rows are not the ones the stats were "
                "computed from (rows moved between episodes, or data edited after writing)",
                fix="find which episode's rows are wrong (compare with the source recording); if the rows are "
                "right, recompute the stats/* columns of meta/episodes and meta/stats.json from them",
                file=data_file, episode=eps[0], episodes=tuple(eps),
                feature=bad[eps[0]][0].split(" (")[0]))
        return out

    def _swapped_pairs(self, eps: list[int], stored: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[int, int]]:
        def matches(rows_of: int, stats_of: int) -> bool:
            checked = False
            for name, per_episode in self.stats.items():
                computed = per_episode.get(rows_of)
                if computed is None or name not in stored or "min" not in stored[name]:
                    continue
                for stat in ("min", "max", "mean"):
                    value = np.asarray(stored[name][stat][stats_of], dtype=np.float64).reshape(computed[stat].shape)
                    if not stats_close(stat, value, computed[stat], mean=computed["mean"], std=computed["std"],
                                       thresholds=self.thresholds).all():
                        return False
                    checked = True
            return checked

        pairs, used = [], set()
        for i, a in enumerate(eps):
            for b in eps[i + 1:]:
                if a not in used and b not in used and matches(a, b) and matches(b, a):
                    pairs.append((a, b))
                    used.update((a, b))
        return pairs

    def _stats_json_findings(self, stats_json: Any, problem: str | None, where: str) -> list[Finding]:
        if problem is not None:
            missing = "missing" in problem or "not found" in problem
            return [Finding(
                "error", "stats-json-missing" if missing else "stats-json-unreadable",
                f"meta/stats.json {problem}; LeRobot's policies normalize inputs and outputs with it",
                fix="recompute meta/stats.json from the per-episode stats (LeRobot's aggregate_stats) or restore it",
                file=where)]
        if not isinstance(stats_json, Mapping):
            return [Finding("error", "stats-json-unreadable",
                            f"meta/stats.json holds a {type(stats_json).__name__}, not an object of features",
                            fix="recompute meta/stats.json from the per-episode stats or restore it", file=where)]
        out: list[Finding] = []
        not_finite = []
        for name, entry in stats_json.items():
            if not isinstance(entry, Mapping):
                continue
            for stat, value in entry.items():
                try:
                    array = np.asarray(value, dtype=np.float64)
                except (TypeError, ValueError):
                    continue
                if not np.isfinite(array).all():
                    not_finite.append((name, stat))
        if not_finite:
            listed = ", ".join(f"{n}/{s}" for n, s in not_finite[:8])
            out.append(Finding(
                "error", "stats-json-not-finite",
                f"meta/stats.json holds NaN or inf in {listed}{' and more' if len(not_finite) > 8 else ''}; "
                "normalizing with it turns every value into NaN",
                fix="recompute meta/stats.json from finite data (find the NaN rows with this audit first)",
                file=where, feature=not_finite[0][0]))
        skip = {name for name, _ in not_finite}
        wrong = []
        for name, per_episode in self.stats.items():
            if name in skip or self.unclean[name] or name in self.shape_flagged or not per_episode:
                continue
            if len(per_episode) != self.num_episodes:
                continue  # some data file was unreadable: reported elsewhere
            entry = stats_json.get(name)
            if not isinstance(entry, Mapping):
                wrong.append(f"{name} (missing)")
                continue
            computed = _aggregate(list(per_episode.values()))
            bad_stats = []
            for stat in COMPARED_STATS:
                if stat not in entry:
                    continue
                try:
                    value = np.asarray(entry[stat], dtype=np.float64)
                except (TypeError, ValueError):
                    bad_stats.append(stat)
                    continue
                if value.size != computed[stat].size or not stats_close(
                        stat, value.reshape(computed[stat].shape), computed[stat], mean=computed["mean"],
                        std=computed["std"], thresholds=self.thresholds).all():
                    bad_stats.append(stat)
            if bad_stats:
                wrong.append(f"{name} ({'/'.join(bad_stats)})")
        if wrong:
            out.append(Finding(
                "error", "stats-json-mismatch",
                f"meta/stats.json disagrees with the data for {', '.join(wrong[:8])}"
                f"{' and more' if len(wrong) > 8 else ''}: it was computed from other rows (another version of "
                "the dataset, or episodes added or removed since)",
                fix="recompute meta/stats.json from the per-episode stats (LeRobot's aggregate_stats)",
                file=where, feature=wrong[0].split(" (")[0]))
        return out
