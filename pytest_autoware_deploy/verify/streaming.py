"""Streaming agreement: every evaluated sample is a verification sample.

Design. Evaluation already runs every backend on every sample, so verification should judge all of
them, not the first ``verification.num_samples``: a divergence that hits one frame in two hundred must
not pass because it missed the first three. The accumulators here are fed one sample at a time
(``update(sample_idx, reference, actual)``) and keep O(k) state whatever the sample count: counts,
running max/mean errors, the k worst samples with their statistics, top-1 agreement for classifier
logits. ``verdict(limit)`` turns the state into pass/fail with a Polygraphy-style message (output,
statistic, worst values, worst sample indices) and ``to_dict()`` into the report entry.

Per sample, an output is judged by a ``Criterion``: numpy's allclose rule (``|a - r| <= atol + rtol|r|``)
read through an error statistic of the per-element ratio ``|a - r| / (atol + rtol|r|)``:

- ``max``   every element within tolerance (the element-wise rule of ``compare_output``)
- ``mean``  mean |a - r| <= atol + rtol * mean |r| (noise-like errors of fp16/int8 on big tensors)
- ``pQ``    (e.g. ``p99.9``) at least Q% of the elements within tolerance
- plus, always: no NaN/Inf the reference does not have; cosine >= ``min_cosine`` when set

Across samples, a ``Limit`` says how many samples may break their criterion (a rate: none for fp32
backends, a small rate per precision policy for fp16/int8) and, for classifiers, the minimum top-1
agreement. Accumulators merge (``merge``), so xdist workers or chunks of a dataset can be combined.
Detectors are fed their per-sample ``Comparison`` (``verify.detections``) into ``DetectionAgreement``.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field

import numpy as np

from .stats import json_safe, output_stats, tolerance_ratio

_QUANTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


def parse_statistic(value) -> str:
    """Normalise an error statistic: ``'max'``, ``'mean'``, ``'pQ'`` (0 < Q <= 100, e.g. ``'p99.9'``) or a
    quantile as a number in (0, 1]; returns the canonical string. ValueError says what is accepted."""
    if isinstance(value, str) and value in ("max", "mean"):
        return value
    q = None
    if isinstance(value, str) and _QUANTILE.match(value):
        q = float(_QUANTILE.match(value).group(1)) / 100
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        q = float(value)
    percent = round(q * 100, 6) if q is not None and not math.isnan(q) else -1.0
    if not 0 < percent <= 100 or q > 1:
        raise ValueError(f"error statistic {value!r}: expected 'max', 'mean', 'pQ' with 0 < Q <= 100 "
                         "(e.g. 'p99.9'; Q has at most 6 decimals), or a quantile in (0, 1]")
    return "max" if percent == 100 else f"p{percent:.10g}"


@dataclass(frozen=True)
class Criterion:
    """The per-sample tolerance of one output: allclose's atol/rtol read through ``statistic``."""

    atol: float = 1e-3
    rtol: float = 1e-3
    min_cosine: float | None = None
    statistic: str = "max"

    def __post_init__(self):
        object.__setattr__(self, "statistic", parse_statistic(self.statistic))
        if not (self.atol >= 0 and self.rtol >= 0):
            raise ValueError(f"atol and rtol must be >= 0, got atol={self.atol!r}, rtol={self.rtol!r}")

    @property
    def quantile(self) -> float | None:
        return float(self.statistic[1:]) / 100 if self.statistic.startswith("p") else None

    def score(self, ratio: np.ndarray, reference=None, actual=None) -> float:
        """The statistic of the tolerance ratio: <= 1 means within tolerance."""
        ratio = np.asarray(ratio, dtype=np.float64).ravel()
        if not ratio.size:
            return 0.0
        if self.statistic == "max":
            return float(ratio.max())
        if self.statistic == "mean":
            ref = np.asarray(reference, dtype=np.float64).ravel()
            act = np.asarray(actual, dtype=np.float64).ravel()
            judged = np.isfinite(ref)
            if not np.isfinite(act[judged]).all():  # a new NaN/Inf
                return math.inf
            err = float(np.abs(act[judged] - ref[judged]).mean()) if judged.any() else 0.0
            allowed = self.atol + self.rtol * (float(np.abs(ref[judged]).mean()) if judged.any() else 0.0)
            return err / allowed if allowed > 0 else (0.0 if err == 0 else math.inf)
        return float(np.quantile(ratio, self.quantile, method="inverted_cdf"))

    def __str__(self):
        text = f"atol={self.atol:g}, rtol={self.rtol:g}"
        text += f", min_cosine={self.min_cosine:g}" if self.min_cosine is not None else ""
        return text + f" (statistic {self.statistic})"


@dataclass
class SampleCheck:
    """One sample's verdict on one output; ``score`` is the criterion's statistic (> 1 breaks it)."""

    sample: int
    passed: bool
    score: float
    stats: dict
    problem: str = ""

    def describe(self) -> str:
        s = self.stats
        if self.problem:
            return f"#{self.sample} {self.problem}"
        text = f"#{self.sample} max_abs={s['max_abs']:.4g}"
        if s.get("worst_index") is not None:
            text += (f" at {list(s['worst_index'])} (actual={s['actual']:.6g} reference={s['reference']:.6g})")
        text += (f", mean_abs={s['mean_abs']:.3g}, {s['bad']}/{s['numel']} elements over tolerance, "
                 f"score {self.score:.3g}")
        if s["new_nan"] or s["new_inf"]:
            text += f", {s['new_nan']} new NaN {s['new_inf']} new Inf"
        return text + f", cosine {s['cosine']:.6f}"


def check_sample(reference, actual, criterion: Criterion, sample: int = 0) -> SampleCheck:
    """Judge one sample's output against the reference with ``criterion``."""
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if ref.shape != act.shape:
        return SampleCheck(sample, False, math.inf, {"numel": int(ref.size), "bad": int(ref.size)},
                           f"shape {act.shape} differs from reference shape {ref.shape}")
    stats = output_stats(ref, act)
    ratio = tolerance_ratio(ref, act, criterion.atol, criterion.rtol)
    new_nan = int((np.isnan(act) & np.isfinite(ref)).sum())
    new_inf = int((np.isinf(act) & np.isfinite(ref)).sum())
    worst = np.unravel_index(int(np.argmax(ratio)), ref.shape) if ref.size else None
    stats.update(new_nan=new_nan, new_inf=new_inf, bad=int((ratio > 1).sum()),
                 compared=int((np.isfinite(ref) & np.isfinite(act)).sum()),
                 worst_index=tuple(int(i) for i in worst) if worst is not None else None,
                 actual=float(act[worst]) if worst is not None else 0.0,
                 reference=float(ref[worst]) if worst is not None else 0.0)
    score = criterion.score(ratio, ref, act)
    passed = (score <= 1 and not new_nan and not new_inf
              and (criterion.min_cosine is None or stats["cosine"] >= criterion.min_cosine))
    return SampleCheck(sample, bool(passed), score, stats)


@dataclass(frozen=True)
class Limit:
    """How much disagreement a (spec, backend) may show over all samples."""

    max_failed_rate: float = 0.0             # fraction of samples allowed to break their criterion
    min_top1: float | None = None            # classifiers: minimum top-1 agreement (None: not judged)
    min_match_rate: float | None = None      # detectors: matched / reference detections (None: not judged)

    def allowed(self, n: int) -> int:
        return int(math.floor(self.max_failed_rate * n + 1e-9))

    def __str__(self):
        text = f"at most {self.max_failed_rate:.2%} of samples failing"
        text += f", top-1 agreement >= {self.min_top1:.2%}" if self.min_top1 is not None else ""
        return text + (f", match rate >= {self.min_match_rate:.2%}" if self.min_match_rate is not None else "")


# fp32 backends: no failing sample at all (a top-1 flip within tolerance is a tie, not a defect).
# Reduced precision: a small rate of samples may break the per-policy tolerance.
POLICY_LIMITS = {"fp16": Limit(0.01, 0.99, 0.98), "int8": Limit(0.05, 0.97, 0.95)}


def limit_for(policy: str | None) -> Limit:
    return POLICY_LIMITS.get(policy or "", Limit())


def _failed_rate_problems(samples: int, failed: int, limit: Limit, what: str) -> list[str]:
    """The verdicts' shared first check: more failing samples than ``limit`` allows."""
    allowed = limit.allowed(samples)
    if failed <= allowed:
        return []
    return [f"{failed} of {samples} samples ({failed / samples:.2%}) {what}; allowed {allowed} "
            f"({limit.max_failed_rate:.2%})"]


@dataclass
class Verdict:
    passed: bool
    message: str
    summary: dict
    nothing_compared: str = ""  # why a passing verdict claims nothing (no detection on either side)


def nothing_compared(stats: dict, where: str, samples: int) -> str:
    """The reason a detection comparison compared nothing -- no reference and no backend detection over
    ``samples`` samples -- or '' when something was compared. Such a pass would claim agreement it never
    checked (e.g. random weights whose scores all sit under the decoder's threshold)."""
    if stats.get("ref_detections") == 0 and stats.get("actual_detections") == 0:
        return (f"{where}: no detection on either side over {samples} sample(s), so nothing was compared "
                "(every score under the decoder's threshold: random weights, or a threshold above the model's "
                "scores)")
    return ""


class _WorstK:
    """The k worst items by key (largest first), O(k) memory; ties keep the lower sample index."""

    def __init__(self, k: int):
        self.k = k
        self._heap: list = []

    def push(self, key: tuple, sample: int, item):
        entry = (key, -sample, item)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def merge(self, other: "_WorstK"):
        for key, neg, item in other._heap:
            self.push(key, -neg, item)

    def items(self) -> list:
        return [item for _, _, item in sorted(self._heap, key=lambda e: e[:2], reverse=True)]

    def __len__(self):
        return len(self._heap)


class OutputAgreement:
    """Streaming agreement of one backend's output with the reference's, over any number of samples."""

    def __init__(self, output: str, criterion: Criterion, k: int = 5, top1_axis: int | None = None, where: str = ""):
        self.output, self.criterion, self.k, self.top1_axis = output, criterion, k, top1_axis
        self.where = where or f"output '{output}'"
        self.samples = self.failed = 0
        self.first_failed: int | None = None
        self.elements = 0              # finite element pairs compared
        self.sum_abs = 0.0
        self.max_abs = self.max_rel = 0.0
        self.min_cosine = 1.0
        self.new_nan = self.new_inf = 0
        self.worst = _WorstK(k)
        self.top1_rows = self.top1_agree = 0
        self.top1_worst = _WorstK(k)   # disagreements, largest reference margin first

    # -- feeding ------------------------------------------------------------------------------------
    def update(self, sample: int, reference, actual) -> SampleCheck:
        check = check_sample(reference, actual, self.criterion, sample)
        self.add(check)
        if self.top1_axis is not None and not check.problem:
            self._top1(sample, np.asarray(reference, np.float64), np.asarray(actual, np.float64))
        return check

    def add(self, check: SampleCheck):
        s = check.stats
        self.samples += 1
        if not check.passed:
            self.failed += 1
            if self.first_failed is None or check.sample < self.first_failed:
                self.first_failed = check.sample
        if not check.problem:
            n = s["compared"]
            self.elements += n
            self.sum_abs += s["mean_abs"] * n
            self.max_abs = max(self.max_abs, s["max_abs"])
            self.max_rel = max(self.max_rel, s["max_rel"])
            self.min_cosine = min(self.min_cosine, s["cosine"])
            self.new_nan += s["new_nan"]
            self.new_inf += s["new_inf"]
        self.worst.push((not check.passed, check.score), check.sample, check)

    def _top1(self, sample, ref, act):
        axis = self.top1_axis
        r, a = np.moveaxis(ref, axis, -1), np.moveaxis(act, axis, -1)
        r, a = r.reshape(-1, r.shape[-1]), a.reshape(-1, a.shape[-1])
        if not r.shape[-1]:
            return
        r_top, a_top = r.argmax(-1), np.where(np.isnan(a).any(-1), -1, a.argmax(-1))
        self.top1_rows += len(r)
        self.top1_agree += int((r_top == a_top).sum())
        for row in np.flatnonzero(r_top != a_top):
            ordered = np.sort(r[row])[::-1]
            margin = float(ordered[0] - ordered[1]) if len(ordered) > 1 else math.inf
            self.top1_worst.push((margin,), sample, {"sample": sample, "row": int(row), "reference": int(r_top[row]),
                                                     "actual": int(a_top[row]), "reference_margin": margin})

    def merge(self, other: "OutputAgreement") -> "OutputAgreement":
        """Fold another accumulator of the same output (another worker's samples) into this one."""
        if other.criterion != self.criterion or other.output != self.output:
            raise ValueError(f"cannot merge agreement of output '{other.output}' ({other.criterion}) into "
                             f"'{self.output}' ({self.criterion})")
        self.samples += other.samples
        self.failed += other.failed
        if other.first_failed is not None:
            self.first_failed = other.first_failed if self.first_failed is None else min(self.first_failed,
                                                                                          other.first_failed)
        self.elements += other.elements
        self.sum_abs += other.sum_abs
        self.max_abs, self.max_rel = max(self.max_abs, other.max_abs), max(self.max_rel, other.max_rel)
        self.min_cosine = min(self.min_cosine, other.min_cosine)
        self.new_nan += other.new_nan
        self.new_inf += other.new_inf
        self.worst.merge(other.worst)
        self.top1_rows += other.top1_rows
        self.top1_agree += other.top1_agree
        self.top1_worst.merge(other.top1_worst)
        return self

    # -- results ------------------------------------------------------------------------------------
    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.elements if self.elements else 0.0

    @property
    def top1_rate(self) -> float | None:
        return self.top1_agree / self.top1_rows if self.top1_rows else None

    def to_dict(self) -> dict:
        """The report entry: totals, errors over all samples, the worst samples with their statistics."""
        out = {"output": self.output, "criterion": str(self.criterion), "samples": self.samples,
               "failed": self.failed, "failed_rate": self.failed / self.samples if self.samples else 0.0,
               "first_failed": self.first_failed, "max_abs": self.max_abs, "mean_abs": self.mean_abs,
               "max_rel": self.max_rel, "min_cosine": self.min_cosine, "new_nan": self.new_nan,
               "new_inf": self.new_inf,
               "worst": [{"sample": c.sample, "passed": c.passed, "score": c.score, "problem": c.problem,
                          **{k: v for k, v in c.stats.items() if k in _REPORT_KEYS}} for c in self.worst.items()]}
        if self.top1_axis is not None:
            out["top1"] = {"rows": self.top1_rows, "agree": self.top1_agree, "rate": self.top1_rate,
                           "worst": self.top1_worst.items()}
        return json_safe(out)

    def verdict(self, limit: Limit | None = None) -> Verdict:
        limit = limit or Limit()
        summary = self.to_dict()
        if not self.samples:
            return Verdict(False, f"{self.where}: no sample was compared: nothing to claim", summary)
        problems = _failed_rate_problems(self.samples, self.failed, limit, f"break {self.criterion}")
        if limit.min_top1 is not None and self.top1_rate is not None and self.top1_rate < limit.min_top1:
            problems.append(f"top-1 agreement {self.top1_agree}/{self.top1_rows} ({self.top1_rate:.2%}) < "
                            f"{limit.min_top1:.2%}")
        if not problems:
            return Verdict(True, "", summary)
        lines = [f"{self.where}: " + "; ".join(problems),
                 f"  over all {self.samples} samples: max_abs={self.max_abs:.4g} mean_abs={self.mean_abs:.4g} "
                 f"max_rel={self.max_rel:.4g} min_cosine={self.min_cosine:.6f}; new NaN {self.new_nan}, "
                 f"new Inf {self.new_inf}"]
        failing = [c for c in self.worst.items() if not c.passed]
        if failing:
            lines.append(f"  worst samples: {', '.join(str(c.sample) for c in failing)}" +
                         (f" (first failing: {self.first_failed})" if self.first_failed not in
                          [c.sample for c in failing] else ""))
            lines += [f"    {c.describe()}" for c in failing]
        if self.top1_axis is not None and len(self.top1_worst):
            lines.append("  top-1 disagreements (largest reference margin first): " + "; ".join(
                f"#{d['sample']} row {d['row']}: {d['actual']} vs {d['reference']} (margin {d['reference_margin']:.3g})"
                for d in self.top1_worst.items()))
        return Verdict(False, "\n".join(lines), summary)


_REPORT_KEYS = ("max_abs", "mean_abs", "max_rel", "cosine", "new_nan", "new_inf", "bad", "numel", "worst_index",
                "actual", "reference")


class DetectionAgreement:
    """Streaming agreement of a detection output: fed each sample's ``Comparison`` from ``compare_detections``
    / ``compare_detections3d`` (their stats: matched / unmatched counts, ``max_*_err``)."""

    def __init__(self, output: str, k: int = 5, where: str = ""):
        self.output, self.k = output, k
        self.where = where or f"output '{output}'"
        self.samples = self.failed = 0
        self.first_failed: int | None = None
        self.totals: dict = {}
        self.max_err: dict = {}
        self.worst = _WorstK(k)

    def add(self, sample: int, comparison):
        stats = comparison.stats or {}
        self.samples += 1
        if not comparison.passed:
            self.failed += 1
            self.first_failed = sample if self.first_failed is None else min(self.first_failed, sample)
        for key in ("matched", "ref_detections", "actual_detections", "unmatched_ref", "unmatched_actual",
                    "borderline"):
            self.totals[key] = self.totals.get(key, 0) + int(stats.get(key, 0))
        for key, value in stats.items():
            if key.startswith("max_") and isinstance(value, (int, float)):
                self.max_err[key] = max(self.max_err.get(key, 0.0), float(value))
        unmatched = int(stats.get("unmatched_ref", 0)) + int(stats.get("unmatched_actual", 0))
        self.worst.push((not comparison.passed, unmatched), sample,
                        {"sample": sample, "passed": comparison.passed, "unmatched": unmatched,
                         "message": comparison.message})

    def merge(self, other: "DetectionAgreement") -> "DetectionAgreement":
        self.samples += other.samples
        self.failed += other.failed
        if other.first_failed is not None:
            self.first_failed = other.first_failed if self.first_failed is None else min(self.first_failed,
                                                                                          other.first_failed)
        for key, value in other.totals.items():
            self.totals[key] = self.totals.get(key, 0) + value
        for key, value in other.max_err.items():
            self.max_err[key] = max(self.max_err.get(key, 0.0), value)
        self.worst.merge(other.worst)
        return self

    @property
    def match_rate(self) -> float | None:
        ref = self.totals.get("ref_detections", 0)
        return self.totals.get("matched", 0) / ref if ref else None

    def to_dict(self) -> dict:
        return json_safe({"output": self.output, "compare": "detections", "samples": self.samples,
                          "failed": self.failed, "failed_rate": self.failed / self.samples if self.samples else 0.0,
                          "first_failed": self.first_failed, "match_rate": self.match_rate, **self.totals,
                          **self.max_err, "worst": self.worst.items()})

    def verdict(self, limit: Limit | None = None) -> Verdict:
        limit = limit or Limit()
        summary = self.to_dict()
        if not self.samples:
            return Verdict(False, f"{self.where}: no sample was compared: nothing to claim", summary)
        problems = _failed_rate_problems(self.samples, self.failed, limit, "fail the detection match")
        rate = self.match_rate
        if limit.min_match_rate is not None and rate is not None and rate < limit.min_match_rate:
            problems.append(f"match rate {self.totals['matched']}/{self.totals['ref_detections']} ({rate:.2%}) < "
                            f"{limit.min_match_rate:.2%}")
        if not problems:
            return Verdict(True, "", summary, nothing_compared(self.totals, self.where, self.samples))
        errs = " ".join(f"{k}={v:.4g}" for k, v in sorted(self.max_err.items()))
        lines = [f"{self.where}: " + "; ".join(problems),
                 f"  over all {self.samples} samples: {self.totals.get('matched', 0)} matched of "
                 f"{self.totals.get('ref_detections', 0)} reference / {self.totals.get('actual_detections', 0)} "
                 f"backend detections; {errs}"]
        failing = [w for w in self.worst.items() if not w["passed"]]
        if failing:
            lines.append(f"  worst samples: {', '.join(str(w['sample']) for w in failing)}")
            lines += [f"    #{w['sample']}: {w['message']}" for w in failing]
        return Verdict(False, "\n".join(lines), summary)


@dataclass
class BackendAgreement:
    """All element-wise outputs of one backend vs the reference: route each sample's output dicts to one
    ``OutputAgreement`` per output. ``criteria`` maps output -> Criterion (``default`` for the others);
    ``classifier_outputs`` are logits whose top-1 agreement is tracked too."""

    backend: str
    reference: str
    default: Criterion
    criteria: dict = field(default_factory=dict)
    classifier_outputs: tuple = ()
    k: int = 5
    outputs: dict = field(default_factory=dict)

    def _acc(self, name) -> OutputAgreement:
        if name not in self.outputs:
            self.outputs[name] = OutputAgreement(
                name, self.criteria.get(name, self.default), self.k,
                top1_axis=-1 if name in self.classifier_outputs else None,
                where=f"backend {self.backend} vs {self.reference}, output '{name}'")
        return self.outputs[name]

    def update(self, sample: int, reference: dict, actual: dict) -> dict:
        """Feed one sample's outputs (name -> array); an output the backend lacks fails that sample."""
        checks = {}
        for name, ref in reference.items():
            if name not in actual:
                check = SampleCheck(sample, False, math.inf, {"numel": int(np.size(ref)), "bad": int(np.size(ref))},
                                    f"backend produced no output '{name}' (got {sorted(actual)})")
                self._acc(name).add(check)
            else:
                check = self._acc(name).update(sample, ref, actual[name])
            checks[name] = check
        return checks

    def verdicts(self, limit: Limit | None = None) -> dict:
        return {name: acc.verdict(limit) for name, acc in self.outputs.items()}


def batch_invariance(infer, feeds: list, criterion: Criterion, k: int = 5) -> dict:
    """Does a batch give each sample the outputs it gets alone? Runs every feed alone (the reference) and all
    of them concatenated along axis 0 in one call, then compares the batched outputs' slices sample by
    sample. Returns output -> OutputAgreement (``.verdict()`` for pass/fail). ``infer(feed) -> {name: array}``."""
    if not feeds:
        raise ValueError("batch_invariance needs at least one feed")
    names = list(feeds[0])
    sizes = [int(np.shape(f[names[0]])[0]) for f in feeds]
    batched = infer({n: np.concatenate([np.asarray(f[n]) for f in feeds], axis=0) for n in names})
    total = sum(sizes)
    accs = {name: OutputAgreement(name, criterion, k, where=f"output '{name}', batch of {total} vs one by one")
            for name in batched}
    for name, value in batched.items():
        if np.ndim(value) == 0 or np.shape(value)[0] != total:
            raise ValueError(f"output '{name}' has shape {np.shape(value)}: its first axis is not the batch "
                             f"({total} samples in the batched call), so it cannot be split per sample")
    start = 0
    for i, (feed, size) in enumerate(zip(feeds, sizes)):
        alone = infer(feed)
        for name, value in batched.items():
            accs[name].update(i, alone[name], np.asarray(value)[start:start + size])
        start += size
    return accs
