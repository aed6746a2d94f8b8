"""The regression gate: this run's results against a stored baseline.

A baseline is a ``deploy_report.json`` (any run's report works) or the file
``--deploy-save-baseline`` writes: the same ``{"specs": ...}`` layout plus where and when it was
measured. The comparisons are pure functions so they can be property-tested; the plugin turns
each (spec, backend) into a gate test whose failure message is the list of breaches.
"""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployError
from ..export.cache import atomic_write_text

SCHEMA = "pytest-autoware-deploy/baseline/1"


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


def load_baseline(path) -> dict:
    """The ``specs`` of a stored report; one clear error for a missing or malformed file."""
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
    return specs


def save_baseline(path, specs: dict) -> Path:
    """Write this run's results as a baseline (atomically: a crash never leaves half a baseline)."""
    path = Path(path)
    doc = {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"node": platform.node(), "processor": platform.processor() or platform.machine(),
                       "python": platform.python_version()},
           "specs": specs}
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path


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
    not a regression.
    """
    out = []
    for p in percentiles:
        if p not in baseline_ms or p not in current_ms:
            continue
        base, cur = float(baseline_ms[p]), float(current_ms[p])
        limit = max(base * (1 + tolerance_pct / 100.0), base + min_delta_ms)
        if cur > limit:
            rule = f"+{tolerance_pct:g}%" + (f", at least +{min_delta_ms:g} ms" if min_delta_ms else "")
            out.append(Breach(f"latency {p} (ms)", base, cur, limit, rule))
    return out


def baseline_backend(baseline_specs: dict, spec: str, backend: str) -> dict | None:
    return baseline_specs.get(spec, {}).get("backends", {}).get(backend)
