"""Minimal fp32 islands: the fewest nodes to keep in fp32 so that an fp16/int8 graph passes.

Why. When a precision policy fails, the engineer's next question is *what to keep in fp32*. Keeping
everything in fp32 answers it uselessly; Polygraphy's precision bisection stopped working on TensorRT 11.
This module is the search alone, independent of ONNX: ``passes(nodes)`` builds and judges the graph with
``nodes`` kept in fp32 (``islands_state`` supplies it), and the search asks it as few times as it can.

The search assumes monotonicity (keeping more nodes in fp32 never hurts), which holds for rounding errors
up to noise, and runs in three steps over the candidates in topological order:

1. bisection for the shortest prefix ``c[:end]`` that passes (the last node that matters is ``c[end-1]``);
2. bisection for the latest start so that ``c[start:end]`` still passes (the first node that matters);
3. pruning: each node of that window is dropped in turn and stays dropped when the rest still passes.

The result is 1-minimal (dropping any one node of it fails) when the trial budget sufficed. A single hostile
node costs about ``2 log2(n) + 2`` trials; each trial's verdict is memoized.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence


@dataclass
class IslandSearch:
    """What the search found: ``nodes`` to keep in fp32 (topological order) when ``found``."""

    found: bool
    nodes: list
    candidates: int
    trials: int
    minimal: bool                     # pruning finished within the budget (1-minimal)
    reason: str = ""                  # why not found / why not minimal
    seconds: float = 0.0
    history: list = field(default_factory=list)  # [(number of fp32 nodes, passed), ...] in trial order

    def to_dict(self) -> dict:
        return asdict(self)


class _Budget(Exception):
    pass


def trial_bound(n: int) -> int:
    """Trials the search needs at most for ``n`` candidates when one node is to blame (pruning its window
    of one costs none): both ends, two bisections."""
    return 2 + 2 * max(1, math.ceil(math.log2(max(n, 2))))


def search_islands(candidates: Sequence[str], passes: Callable[[list], bool], max_trials: int = 48) -> IslandSearch:
    """Search the fewest ``candidates`` to keep in fp32 so that ``passes`` holds (see the module docstring)."""
    cands = list(dict.fromkeys(candidates))
    memo: dict[frozenset, bool] = {}
    history: list = []
    start_time = time.perf_counter()

    def judge(nodes: list) -> bool:
        key = frozenset(nodes)
        if key not in memo:
            if len(memo) >= max_trials:
                raise _Budget()
            memo[key] = bool(passes(list(nodes)))
            history.append((len(nodes), memo[key]))
        return memo[key]

    def result(found, nodes, minimal=True, reason=""):
        return IslandSearch(found, list(nodes), len(cands), len(memo), minimal, reason,
                            round(time.perf_counter() - start_time, 3), history)

    try:
        if judge([]):
            return result(True, [], reason="the pure policy graph passes: nothing to keep in fp32")
        if not cands or not judge(cands):
            return result(False, [], False, f"keeping all {len(cands)} candidate node(s) in fp32 does not pass "
                                            "either: the failure is not the policy's arithmetic")
    except _Budget:
        return result(False, [], False, f"max_trials={max_trials} reached before the first verdicts")
    best = list(cands)
    try:
        lo, hi = 1, len(cands)  # shortest passing prefix: c[:hi] passes
        while lo < hi:
            mid = (lo + hi) // 2
            if judge(cands[:mid]):
                hi = mid
            else:
                lo = mid + 1
        end = hi
        best = cands[:end]
        lo, hi = 0, end - 1  # latest start: c[lo:end] passes
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if judge(cands[mid:end]):
                lo = mid
            else:
                hi = mid - 1
        best = cands[lo:end]
        kept = list(best)
        for node in list(best)[::-1] if len(best) > 1 else ():
            trial = [n for n in kept if n != node]
            if trial and judge(trial):
                kept = trial
        best = kept
    except _Budget:
        return result(True, best, False, f"max_trials={max_trials} reached: the set passes but may not be minimal")
    return result(True, best)
