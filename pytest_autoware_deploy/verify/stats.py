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
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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


def tolerance_ratio(reference: np.ndarray, actual: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Per element ``|actual - ref| / (atol + rtol * |ref|)`` (float64, same shape): an element passes
    numpy's allclose rule iff its ratio is <= 1, so any statistic of the ratio (max, a quantile) is a
    tolerance check. Conventions, those of ``compare_output``: +inf where the actual is NaN/Inf and the
    reference is finite (a new non-finite value always fails), 0 where the reference itself is NaN/Inf
    (not judged), +inf where the values differ and nothing is allowed (atol = rtol = 0). Never NaN."""
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if ref.shape != act.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs actual {act.shape}")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        allowed = atol + rtol * np.abs(ref)
        diff = np.abs(act - ref)
        ratio = np.where(diff == 0, 0.0, diff / allowed)
        # the quotient may round onto 1.0 for a difference just over the allowance: keep the rule exact
        ratio = np.where(diff <= allowed, np.minimum(ratio, 1.0), np.maximum(ratio, np.nextafter(1.0, 2.0)))
    ratio = np.where(np.isfinite(act), ratio, np.inf)
    return np.where(np.isfinite(ref), np.nan_to_num(ratio, nan=np.inf, posinf=np.inf), 0.0)


def json_safe(value):
    """``value`` for ``deploy_report.json``: NaN/Inf floats as the strings 'nan'/'inf'/'-inf' (JSON has no
    such numbers: ``json.dumps`` would write the non-standard ``Infinity``), numpy scalars as Python numbers,
    tuples as lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
