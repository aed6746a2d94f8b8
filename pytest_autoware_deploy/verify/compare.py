"""Tolerance check of one output, and the failure message a user needs to act on it.

Pass rule (numpy.allclose's): ``|actual - ref| <= atol + rtol * |ref|`` everywhere, no NaN/Inf
in the actual output that the reference does not have, and cosine >= min_cosine if set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import output_stats


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    min_cosine: float | None = None

    def __str__(self):
        text = f"atol={self.atol:g}, rtol={self.rtol:g}"
        return text + (f", min_cosine={self.min_cosine:g}" if self.min_cosine is not None else "")


@dataclass
class Comparison:
    passed: bool
    stats: dict
    message: str = ""


def _fmt_index(index):
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def compare_output(reference, actual, tol: Tolerance, where: str) -> Comparison:
    """Compare arrays; ``where`` names spec/backend/output/sample/shape for the message."""
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if ref.shape != act.shape:
        return Comparison(False, {}, f"{where}: shape {act.shape} differs from reference shape {ref.shape}")
    stats = output_stats(ref, act)
    new_nan = int((np.isnan(act) & ~np.isnan(ref)).sum())
    new_inf = int((np.isinf(act) & ~np.isinf(ref)).sum())
    problems = []
    if new_nan or new_inf:
        problems.append(f"{new_nan} NaN and {new_inf} Inf values in the output where the reference is finite "
                        f"(of {ref.size} elements)")
    finite = np.isfinite(ref) & np.isfinite(act)
    excess = np.where(finite, np.abs(act - ref) - (tol.atol + tol.rtol * np.abs(ref)), -np.inf)
    n_bad = int((excess > 0).sum())
    if n_bad:
        idx = np.unravel_index(int(np.argmax(excess)), ref.shape)
        problems.append(
            f"{n_bad}/{ref.size} elements exceed {tol}; worst at index {_fmt_index(idx)}: "
            f"actual={act[idx]:.6g} reference={ref[idx]:.6g} |diff|={abs(act[idx] - ref[idx]):.3g} "
            f"> allowed {tol.atol + tol.rtol * abs(ref[idx]):.3g}")
    if tol.min_cosine is not None and stats["cosine"] < tol.min_cosine:
        problems.append(f"cosine similarity {stats['cosine']:.6f} < min_cosine {tol.min_cosine:g}")
    if not problems:
        return Comparison(True, stats)
    summary = (f"max_abs={stats['max_abs']:.3g} mean_abs={stats['mean_abs']:.3g} "
               f"max_rel={stats['max_rel']:.3g} cosine={stats['cosine']:.6f}")
    return Comparison(False, stats, f"{where}: " + "; ".join(problems) + f" [{summary}]")
