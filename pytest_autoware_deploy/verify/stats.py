"""Error statistics of a backend's output against the reference output."""

from __future__ import annotations

import numpy as np


def output_stats(reference: np.ndarray, actual: np.ndarray) -> dict:
    """max/mean abs error, max relative error, cosine similarity, NaN/Inf counts of both arrays.

    Errors are computed over positions where both values are finite; non-finite values are
    counted separately because a single NaN would otherwise make every statistic NaN.
    """
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if ref.shape != act.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs actual {act.shape}")
    finite = np.isfinite(ref) & np.isfinite(act)
    r, a = ref[finite], act[finite]
    diff = np.abs(r - a)
    denom = np.abs(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(denom > 0, diff / denom, np.where(diff > 0, np.inf, 0.0))
    nr, na = np.linalg.norm(r), np.linalg.norm(a)
    if nr == 0 and na == 0:
        cosine = 1.0
    elif nr == 0 or na == 0:
        cosine = 0.0
    else:
        cosine = float(np.clip(np.dot(r, a) / (nr * na), -1.0, 1.0))
    return {
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "max_rel": float(rel.max()) if rel.size else 0.0,
        "cosine": cosine,
        "nan": int(np.isnan(act).sum()),
        "inf": int(np.isinf(act).sum()),
        "ref_nan": int(np.isnan(ref).sum()),
        "ref_inf": int(np.isinf(ref).sum()),
        "numel": int(ref.size),
    }
