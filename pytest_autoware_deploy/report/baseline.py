"""The regression gate: this run's results against a stored baseline.

A baseline is a ``deploy_report.json`` (any run's report works) or the file
``--deploy-save-baseline`` writes: the same ``{"specs": ...}`` layout plus the machine it was
measured on (``machine.fingerprint()``) and when. The comparisons are pure functions so they can
be property-tested; the plugin turns each (spec, backend) into a gate test whose failure message
is the list of breaches.

Latency only means something on the machine that measured it: :func:`machine_differences` names
every field that matters for latency (CPU model and ISA, GPU and driver, library versions) that
differs between the baseline's machine and this one, so a baseline from elsewhere never compares
without a word (a warning by default, a failure with ``--deploy-baseline-same-machine``).

Latency is decided statistically (``bench/gate_stats.py``) on the raw per-round timings each backend entry
keeps under ``latency_samples_ms`` (thinned to at most 2000 values, sorted). A baseline saved before raw
timings were kept falls back to the point comparison (:func:`point_verdicts`), and its verdicts say so.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployError
from ..export.cache import atomic_write_text

SCHEMA = "pytest-autoware-deploy/baseline/3"  # 2: "machine" is machine.fingerprint(); 3: latency_samples_ms
SAMPLES_KEY = "latency_samples_ms"  # per backend entry: raw per-round timings in ms (gate_stats.thin)
NO_SAMPLES = ("the baseline has no raw per-round timings (saved by an older version, or a report without "
              "latency_samples_ms): point comparison against the tolerance, no confidence interval; re-save the "
              "baseline with --deploy-save-baseline for the statistical gate")

# Fingerprint fields (dotted paths into machine.fingerprint()) whose change can move latency.
# Left out on purpose: the OS/kernel string and the Python implementation (one per interpreter).
LATENCY_MACHINE_FIELDS = ("cpu.model", "cpu.vendor", "cpu.machine", "cpu.flags", "gpu", "versions",
                          "onnxruntime_providers", "python")

NO_FINGERPRINT = ("the baseline records no machine fingerprint (a deploy_report.json, or a baseline saved by an "
                  "older version): cannot tell whether its latency was measured on this machine")


@dataclass(frozen=True)
class Breach:
    what: str
    baseline: float
    current: float
    limit: float
    rule: str

    def __str__(self):
        return (f"{self.what}: baseline {self.baseline:.6g}, current {self.current:.6g}, "
                f"limit {self.limit:.6g} ({self.rule})")


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline: its results per spec and the machine that measured them (None: unrecorded)."""

    path: Path
    specs: dict
    machine: dict | None


def read_baseline(path) -> Baseline:
    """The stored report's ``specs`` and ``machine``; one clear error for a missing or malformed file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"--deploy-baseline: {path} does not exist (write one with --deploy-save-baseline "
                          "or pass a previous run's deploy_report.json)") from None
    except (OSError, ValueError) as exc:
        raise DeployError(f"--deploy-baseline: {path} is not readable JSON: {exc}") from None
    specs = doc.get("specs") if isinstance(doc, dict) else None
    if not isinstance(specs, dict) or not all(isinstance(b, dict) and isinstance(b.get("backends"), dict)
                                              for b in specs.values()):
        raise DeployError(f"--deploy-baseline: {path} is not a deploy report/baseline: expected "
                          '{"specs": {"<spec>": {"backends": {...}}}}')
    machine = doc.get("machine")
    # schema 1 stored {"node", "processor", "python"}: not a fingerprint, nothing to compare field by field
    if not (isinstance(machine, dict) and isinstance(machine.get("cpu"), dict) and "versions" in machine):
        machine = None
    return Baseline(path, specs, machine)


def load_baseline(path) -> dict:
    """The ``specs`` of a stored report (see :func:`read_baseline`)."""
    return read_baseline(path).specs


def save_baseline(path, specs: dict, machine: dict | None = None) -> Path:
    """Write this run's results as a baseline with the machine that measured them (atomically: a crash
    never leaves half a baseline). ``machine`` defaults to this machine's fingerprint."""
    if machine is None:
        from ..machine import fingerprint

        machine = fingerprint()
    path = Path(path)
    doc = {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine, "specs": specs}
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path


def _field(doc: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _ABSENT
        doc = doc[part]
    return doc


class _Absent:
    def __repr__(self):
        return "absent"


_ABSENT = _Absent()


def _leaves(value, prefix: str):
    """Dotted leaf paths of a fingerprint subtree; a list of dicts (the GPUs) is indexed."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _leaves(value[key], f"{prefix}.{key}")
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def machine_differences(baseline_machine: dict | None, current: dict) -> list[str]:
    """One line per latency-relevant fingerprint field that differs, e.g.
    ``cpu.model: baseline 'AMD EPYC 7B13', here 'Intel(R) Xeon(R) Platinum 8480+'``; [] when the machines
    match on every such field. A baseline without a fingerprint is one line saying so (never a silent match)."""
    if baseline_machine is None:
        return [NO_FINGERPRINT]
    out = []
    for name in LATENCY_MACHINE_FIELDS:
        base, cur = _field(baseline_machine, name), _field(current, name)
        if base == cur:
            continue
        base_leaves, cur_leaves = dict(_leaves(base, name)), dict(_leaves(cur, name))
        if set(base_leaves) & set(cur_leaves):  # same shape (both dicts, same number of GPUs): field by field
            for key in sorted(set(base_leaves) | set(cur_leaves)):
                b, c = base_leaves.get(key, _ABSENT), cur_leaves.get(key, _ABSENT)
                if b != c:
                    out.append(f"{key}: baseline {b!r}, here {c!r}")
        else:  # e.g. no GPU vs two GPUs: the whole field
            out.append(f"{name}: baseline {_compact(base)}, here {_compact(cur)}")
    return out


def _compact(value) -> str:
    if value is _ABSENT:
        return "absent"
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else repr(value)


def accuracy_breach(baseline_eval: dict, current_eval: dict, max_drop: float) -> Breach | None:
    """The primary metric may fall at most ``max_drop`` below the baseline's."""
    metric = current_eval.get("primary_metric") or baseline_eval.get("primary_metric") or "accuracy"
    if metric not in baseline_eval:
        raise DeployError(f"baseline has no '{metric}' for this backend (it has {sorted(baseline_eval)})")
    base, cur = float(baseline_eval[metric]), float(current_eval[metric])
    limit = base - max_drop
    if cur < limit:
        return Breach(metric, base, cur, limit, f"max drop {max_drop:g}")
    return None


def latency_breaches(baseline_ms: dict, current_ms: dict, tolerance_pct: float, min_delta_ms: float,
                     percentiles) -> list[Breach]:
    """A percentile may grow at most ``tolerance_pct`` percent over the baseline's.

    Growth under ``min_delta_ms`` is never a breach: sub-millisecond noise on shared CI runners is
    not a regression. A gated percentile that the baseline or this run lacks is an error, not a
    pass: a gate that compares nothing must not look like one that compared and found no regression.
    """
    out = []
    for p in percentiles:
        for side, stats in (("baseline", baseline_ms), ("this run", current_ms)):
            if p not in stats:
                raise DeployError(f"gate.latency_percentiles has '{p}' but {side} has no latency '{p}' "
                                  f"(it has {sorted(k for k in stats if k != 'rounds')})")
        base, cur = float(baseline_ms[p]), float(current_ms[p])
        limit = max(base * (1 + tolerance_pct / 100.0), base + min_delta_ms)
        if cur > limit:
            rule = f"+{tolerance_pct:g}%" + (f", at least +{min_delta_ms:g} ms" if min_delta_ms else "")
            out.append(Breach(f"latency {p} (ms)", base, cur, limit, rule))
    return out


def point_verdicts(baseline_ms: dict, current_ms: dict, tolerance_pct: float, min_delta_ms: float,
                   percentiles) -> list:
    """:func:`latency_breaches` as gate verdicts (``regressed``/``ok``, no interval) for a baseline without
    raw timings; each carries :data:`NO_SAMPLES` as its note."""
    from ..bench.gate_stats import LatencyVerdict

    breached = {b.what for b in latency_breaches(baseline_ms, current_ms, tolerance_pct, min_delta_ms, percentiles)}
    out = []
    for p in percentiles:
        base, cur = float(baseline_ms[p]), float(current_ms[p])
        limit = max(base * (1 + tolerance_pct / 100.0), base + min_delta_ms)
        out.append(LatencyVerdict(p, "regressed" if f"latency {p} (ms)" in breached else "ok", base, cur,
                                  cur / base if base > 0 else float("inf"), None, limit / base if base > 0 else 1.0,
                                  None, (int(baseline_ms.get("rounds", 0)), int(current_ms.get("rounds", 0))),
                                  note=NO_SAMPLES))
    return out


def baseline_backend(baseline_specs: dict, spec: str, backend: str) -> dict | None:
    return baseline_specs.get(spec, {}).get("backends", {}).get(backend)


class LatencyGateWarning(UserWarning):
    """A latency gate stayed inconclusive after its extra rounds and passed (gate.latency_inconclusive='pass')."""


def check_gate(gate: dict, spec_file) -> None:
    """Ranges the schema's types cannot express: one SpecError naming the key."""
    from ..errors import SpecError

    if not 0 < gate["latency_confidence"] < 1:
        raise SpecError(spec_file, "gate.latency_confidence", f"expected a number in (0, 1), got "
                                                              f"{gate['latency_confidence']!r}")
    for key in ("latency_max_extensions", "latency_min_effect_pct", "latency_tolerance_pct", "latency_min_delta_ms"):
        if gate[key] < 0:
            raise SpecError(spec_file, f"gate.{key}", f"expected a value >= 0, got {gate[key]!r}")


def latency_gate(baseline_entry: dict, current_ms: dict, current_samples, measure, gate: dict,
                 tolerance_override: float | None = None):
    """The latency gate for one (spec, backend): a ``bench.gate_stats.GateResult``.

    With raw timings on both sides: the statistical gate (``gate_with_extensions``; ``measure(n)`` times ``n``
    more rounds, ms). Without them in the baseline: :func:`point_verdicts` (no extensions). A tolerance override
    (``--deploy-latency-tolerance``) replaces both the point tolerance and the minimum effect."""
    from ..bench.gate_stats import GateResult, gate_with_extensions

    percentiles = gate["latency_percentiles"]
    tolerance = gate["latency_tolerance_pct"] if tolerance_override is None else tolerance_override
    min_effect = gate["latency_min_effect_pct"] if tolerance_override is None else tolerance_override
    base_samples = baseline_entry.get(SAMPLES_KEY)
    if not base_samples:
        return GateResult(point_verdicts(baseline_entry["latency_ms"], current_ms, tolerance,
                                         gate["latency_min_delta_ms"], percentiles), list(current_samples or []), 0)
    if not current_samples:
        raise DeployError("this run recorded no raw latency timings to compare with the baseline's")
    return gate_with_extensions(base_samples, current_samples, measure, percentiles, min_effect,
                                gate["latency_min_delta_ms"], gate["latency_confidence"],
                                gate["latency_max_extensions"], gate["latency_confirm"])


def latency_gate_retimed(measure_pair, rounds: int, gate: dict, tolerance_override: float | None = None):
    """The latency gate against the baseline's own artifact re-timed in this job: ``measure_pair(n)`` returns
    ``n`` rounds (ms) of the baseline's and of this run's, interleaved (``bench.latency.interleaved_timings``, in
    measuring order): the intervals resample block pairs (``bench.gate_stats.paired_bootstrap_ratio_ci``)."""
    from ..bench.gate_stats import gate_interleaved

    min_effect = gate["latency_min_effect_pct"] if tolerance_override is None else tolerance_override
    return gate_interleaved(measure_pair, rounds, gate["latency_percentiles"], min_effect,
                            gate["latency_min_delta_ms"], gate["latency_confidence"],
                            gate["latency_max_extensions"], gate["latency_confirm"])
