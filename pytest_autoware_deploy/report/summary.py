"""The cross-backend summary AWML's deployment logs end with, rendered from ``deploy_report.json``.

AWML prints, per backend, the metric and ``Latency: mean ± std ms``, then the verification verdicts.
This renders the same from the report (so a run in pytest-xdist workers shows one merged summary), and
for a spec read from an AWML file, its generation, the mapping notes and the keys accepted but not used.
"""

from __future__ import annotations

import json
from pathlib import Path

RULE = "=" * 80


def _metric_line(ev: dict) -> str:
    if not ev:
        return "  No results available"
    primary = ev.get("primary_metric")
    parts = []
    for key in dict.fromkeys([primary, "accuracy", "mAP", "NDS"]):
        if key and isinstance(ev.get(key), (int, float)):
            parts.append(f"{key}: {ev[key]:.4f}")
    n = ev.get("num_samples")
    return "  " + (", ".join(parts) or "evaluated") + (f" ({n} samples)" if n is not None else "")


def _verdict(ver: dict) -> str:
    if not ver:
        return "not verified"
    cases = ver.get("cases") or []
    failed = [c for c in cases if not c.get("passed")]
    worst = max((o.get("max_abs", 0.0) for o in (ver.get("outputs") or {}).values()
                 if isinstance(o.get("max_abs"), (int, float))), default=None)
    text = f"{'PASSED' if ver.get('passed') else 'FAILED'} ({len(cases) - len(failed)}/{len(cases)} comparisons"
    return text + (f", max |diff| {worst:.3g})" if worst is not None else ")")


def render_summary(doc: dict) -> str:
    lines = []
    for name, spec in (doc.get("specs") or {}).items():
        lines += [RULE, f"Cross-Backend Comparison: {name}", RULE]
        backends = spec.get("backends") or {}
        for backend, body in backends.items():
            lines.append(f"{backend.upper()}:")
            lines.append(_metric_line(body.get("evaluation") or {}))
            lat = body.get("latency_ms")
            if lat:
                lines.append(f"  Latency: {lat.get('mean', float('nan')):.2f} ± {lat.get('std', float('nan')):.2f} ms")
        verified = [(b, body["verification"]) for b, body in backends.items() if body.get("verification")]
        for stage, sbody in (spec.get("stages") or {}).items():
            verified += [(f"{stage}/{b}", body["verification"]) for b, body in (sbody.get("backends") or {}).items()
                         if body.get("verification")]
        if verified:
            lines += ["", "Verification:"]
            lines += [f"  {b}: {_verdict(v)}" for b, v in verified]
        simplified = [(name, spec.get("onnx_simplify"))] + [(f"{name}/{stage}", sbody.get("onnx_simplify"))
                                                            for stage, sbody in (spec.get("stages") or {}).items()]
        simplified = [(n, s) for n, s in simplified if s]
        if simplified:
            lines += ["", "ONNX simplified (onnx_config.simplify):"]
            lines += [f"  {n}: onnxslim {s.get('onnxslim')}, {s.get('nodes_before')} -> {s.get('nodes_after')} nodes"
                      for n, s in simplified]
        source = spec.get("config_source")
        if source:
            lines += ["", f"Deploy config read as: {source.get('form')}"]
            if source.get("model_config"):
                lines.append(f"  model config: {source['model_config']} ({source.get('model_type')})")
            for note in source.get("notes") or []:
                lines.append(f"  note: {note}")
            unused = source.get("unused") or []
            if unused:
                lines.append(f"  accepted but not used here ({len(unused)}):")
                lines += [f"    {u['key']}: {u['reason']}" for u in unused]
        lines.append(RULE)
    return "\n".join(lines)


def summary_from_report(work_dir) -> str | None:
    path = Path(work_dir) / "deploy_report.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return render_summary(doc)
