"""Write ``deploy_report.json`` and a readable ``deploy_report.md`` (atomically)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..export.cache import atomic_write_text

LATENCY_COLS = ("min", "mean", "median", "p95", "p99", "max")


def write_reports(store) -> list[Path]:
    written = []
    for work_dir, specs in store.by_work_dir().items():
        root = Path(work_dir)
        doc = {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "specs": specs}
        atomic_write_text(root / "deploy_report.json", json.dumps(doc, indent=2, sort_keys=False, default=str))
        atomic_write_text(root / "deploy_report.md", render_markdown(doc))
        written += [root / "deploy_report.json", root / "deploy_report.md"]
    return written


def _num(v, fmt=".4g"):
    return "–" if v is None else format(v, fmt)


def render_markdown(doc: dict) -> str:
    lines = ["# Deploy report", "", f"Generated {doc['generated']}.", ""]
    for spec_name, spec in doc["specs"].items():
        _render_entry(lines, f"## {spec_name}", spec)
        for stage, body in (spec.get("stages") or {}).items():
            _render_entry(lines, f"## {spec_name} / stage {stage}", body)
    return "\n".join(lines)


def _render_detections(lines: list, backends: dict):
    """Outputs verified by a detection comparator (verify/detections.py): matching statistics."""
    rows = [(b, out, body["verification"]["passed"], s) for b, body in backends.items()
            for out, s in (body.get("verification") or {}).get("outputs", {}).items()
            if s.get("compare") == "detections"]
    if not rows:
        return
    lines += ["", "| backend | detections | passed | matched | unmatched ref | unmatched backend | borderline | "
              "errors (2D: score, box px, IoU; 3D: centre/size m, yaw rad, score) |", "|---|---|---|---|---|---|---|---|"]
    for b, out, passed, s in rows:
        errors = ", ".join(f"{k} {_num(v)}" for k, v in s.items() if k.startswith(("max_", "mean_")))
        lines.append(f"| {b} | {out} | {'yes' if passed else '**no**'} | {s['matched']} | {s['unmatched_ref']} | "
                     f"{s['unmatched_actual']} | {s['borderline']} | {errors} |")


def _render_entry(lines: list, title: str, spec: dict):
    lines += [title, ""]
    if spec.get("spec_file"):
        lines += [f"Spec: `{spec['spec_file']}`", ""]
    for key in ("onnx_file", "export_key"):
        if spec.get(key):
            lines.append(f"- {key}: `{spec[key]}`")
    lines.append("")
    backends = spec["backends"]
    lines += ["### Verification", "", "| backend | output | passed | max_abs | mean_abs | max_rel | cosine | NaN | Inf |",
              "|---|---|---|---|---|---|---|---|---|"]
    for b, body in backends.items():
        ver = body.get("verification")
        if not ver:
            continue
        for out, s in ver["outputs"].items():
            if s.get("compare") == "detections":
                continue  # matched detections: their own table below
            lines.append(f"| {b} | {out} | {'yes' if ver['passed'] else '**no**'} | {_num(s['max_abs'])} | "
                         f"{_num(s['mean_abs'])} | {_num(s['max_rel'])} | {_num(s['cosine'], '.6f')} | "
                         f"{s['nan']} | {s['inf']} |")
    _render_detections(lines, backends)
    lines += ["", "### Evaluation", ""]
    for b, body in backends.items():
        ev = body.get("evaluation")
        if not ev:
            continue
        metric = ev.get("primary_metric", "accuracy")
        lines.append(f"**{b}**: {metric} = {_num(ev.get(metric), '.4f')} over {ev.get('num_samples', '?')} samples")
        if ev.get("per_class"):
            lines.append("")
            lines.append("| class | accuracy |")
            lines.append("|---|---|")
            lines += [f"| {c} | {_num(a, '.4f')} |" for c, a in ev["per_class"].items()]
        for fig in ev.get("figures", []):
            lines.append(f"\n![{b}]({fig})")
        lines.append("")
    lines += ["### Latency (ms)", "", "| backend | " + " | ".join(LATENCY_COLS) + " |",
              "|---|" + "---|" * len(LATENCY_COLS)]
    for b, body in backends.items():
        for key, label in (("latency_ms", b), ("latency_e2e_ms", f"{b} (end to end, host copies)")):
            lat = body.get(key)
            if lat:
                lines.append(f"| {label} | " + " | ".join(_num(lat.get(c), ".3f") for c in LATENCY_COLS) + " |")
        for phase, lat in (body.get("latency_phases_ms") or {}).items():
            lines.append(f"| {b} [{phase}] | " + " | ".join(_num(lat.get(c), ".3f") for c in LATENCY_COLS) + " |")
    sweeps = {b: body["throughput"] for b, body in backends.items() if body.get("throughput")}
    if sweeps:
        lines += ["", "### Throughput by batch size (samples/s at the median latency)", "",
                  "| backend | batch | samples/s | median ms | p99 ms |", "|---|---|---|---|---|"]
        for b, sweep in sweeps.items():
            for batch, t in sorted(sweep.items(), key=lambda kv: int(kv[0])):
                lines.append(f"| {b} | {batch} | {_num(t['samples_per_s'], '.1f')} | "
                             f"{_num(t['latency_ms']['median'], '.3f')} | {_num(t['latency_ms']['p99'], '.3f')} |")
    lines.append("")
