"""What a resume did to the sample stream: repeated, lost and reordered samples, counted exactly.

Compare the uninterrupted stream with one interrupted after k samples and resumed from a
checkpoint. An exact resume (our `pipeline="pool"`) gives zeros; `datasets`' native resume drops
its shuffle buffers, so samples are lost (and, where the state rewinds, repeated). Pure: sample ids
in, counts out, so the notebook and the tests call the same code on any stream.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["ResumeComparison", "resume_comparison"]


@dataclass(frozen=True)
class ResumeComparison:
    """Counts of one interrupted-and-resumed run against the uninterrupted one.

    - `repeated`: extra copies of samples the uninterrupted run yields (a sample trained twice);
    - `lost`: samples the uninterrupted run yields that the resumed run never yields (multiset);
    - `unexpected`: samples the uninterrupted run never yields at all (should always be 0);
    - `reordered`: among the samples both runs yield, the fewest that must move to restore the
      uninterrupted order (length minus the longest increasing run of positions), so one lost
      sample does not count every later one as out of place;
    - `first_divergence`: first position where the two streams differ, None if they are identical;
    - `prefix_matches`: the k samples before the interruption equal the uninterrupted run's first k
      (a determinism check: if False the comparison says little about resume).
    """

    samples_before: int
    full_total: int
    resumed_total: int
    repeated: int
    lost: int
    unexpected: int
    reordered: int
    first_divergence: int | None
    prefix_matches: bool

    @property
    def exact(self) -> bool:
        """The resumed run yields exactly the uninterrupted stream."""
        return self.first_divergence is None

    def as_dict(self) -> dict[str, int | bool | None]:
        return {"samples_before": self.samples_before, "full_total": self.full_total,
                "resumed_total": self.resumed_total, "repeated": self.repeated, "lost": self.lost,
                "unexpected": self.unexpected, "reordered": self.reordered,
                "first_divergence": self.first_divergence, "prefix_matches": self.prefix_matches,
                "exact": self.exact}


def _longest_increasing(values: Sequence[int]) -> int:
    """Length of the longest strictly increasing subsequence (patience sorting, O(n log n))."""
    tails: list[int] = []
    for value in values:
        slot = bisect.bisect_left(tails, value)
        if slot == len(tails):
            tails.append(value)
        else:
            tails[slot] = value
    return len(tails)


def resume_comparison(full: Sequence[Hashable], resumed_prefix: Sequence[Hashable],
                      resumed_rest: Sequence[Hashable]) -> ResumeComparison:
    """Compare `full` (uninterrupted) with `resumed_prefix + resumed_rest` (stopped after
    `len(resumed_prefix)` samples, resumed from the checkpoint taken there).

    Ids are any hashable sample identity (the global `index` of the frame, usually). Repeated ids
    inside `full` are handled as a multiset: the j-th copy of an id matches the j-th copy."""
    full = list(full)
    combined = list(resumed_prefix) + list(resumed_rest)
    full_counts, combined_counts = Counter(full), Counter(combined)
    repeated = sum(max(0, combined_counts[key] - count) for key, count in full_counts.items())
    lost = sum(max(0, count - combined_counts[key]) for key, count in full_counts.items())
    unexpected = sum(count for key, count in combined_counts.items() if key not in full_counts)

    positions: dict[Hashable, list[int]] = defaultdict(list)
    for position, key in enumerate(full):
        positions[key].append(position)
    seen: Counter = Counter()
    matched = []
    for key in combined:
        copy_number = seen[key]
        seen[key] += 1
        if copy_number < len(positions.get(key, ())):
            matched.append(positions[key][copy_number])
    reordered = len(matched) - _longest_increasing(matched)

    first_divergence = next((i for i, (a, b) in enumerate(zip(full, combined, strict=False)) if a != b), None)
    if first_divergence is None and len(full) != len(combined):
        first_divergence = min(len(full), len(combined))
    return ResumeComparison(
        samples_before=len(resumed_prefix), full_total=len(full), resumed_total=len(combined),
        repeated=repeated, lost=lost, unexpected=unexpected, reordered=reordered,
        first_divergence=first_divergence, prefix_matches=list(resumed_prefix) == full[:len(resumed_prefix)],
    )
