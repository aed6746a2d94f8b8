"""Write ``deploy_report.json`` and a readable ``deploy_report.md`` (atomically).

The report names the machine (``machine.fingerprint()``: CPU model and ISA flags, library versions, GPU):
int8 and fp16 results depend on the CPU's instructions, not only on package versions (ONNX Runtime's int8
kernels saturate on x86 CPUs without VNNI), so a number without its machine cannot be compared or explained.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .. import machine
from ..export.cache import atomic_write_text

LATENCY_COLS = ("min", "mean", "median", "p95", "p99", "max")


def write_reports(store) -> list[Path]:
    written = []
    for work_dir, specs in store.by_work_dir().items():
        root = Path(work_dir)
        doc = {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine.fingerprint(), "specs": specs}
        atomic_write_text(root / "deploy_report.json", json.dumps(doc, indent=2, sort_keys=False, default=str))
        atomic_write_text(root / "deploy_report.md", render_markdown(doc))
        written += [root / "deploy_report.json", root / "deploy_report.md"]
    return written


def _num(v, fmt=".4g"):
    return "–" if v is None else format(v, fmt)


def render_markdown(doc: dict) -> str:
    lines = ["# Deploy report", "", f"Generated {doc['generated']}.", ""]
    fp = doc.get("machine")
    if fp:
        lines += _machine_lines(fp) + [""]
    cpu = (fp or {}).get("cpu") or {}
    for spec_name, spec in doc["specs"].items():
        _render_entry(lines, f"## {spec_name}", spec, cpu)
        for stage, body in (spec.get("stages") or {}).items():
            _render_entry(lines, f"## {spec_name} / stage {stage}", body, cpu)
    return "\n".join(lines)


def _machine_lines(fp: dict) -> list[str]:
    cpu = fp.get("cpu") or {}
    isa = " ".join(f for f, on in (cpu.get("flags") or {}).items() if on) or "unknown"
    versions = ", ".join(f"{k} {v}" for k, v in (fp.get("versions") or {}).items() if v)
    gpus = "; ".join(f"{g['name']} (sm {g['compute_capability']}, driver {g.get('driver') or '?'})"
                     for g in fp.get("gpu") or []) or "none"
    return [f"- CPU: {cpu.get('model') or '?'} ({cpu.get('vendor') or '?'}, {cpu.get('machine') or '?'}); "
            f"ISA: {isa}; int8 kernel: {cpu.get('int8_kernel') or '?'}",
            f"- GPU: {gpus}", f"- Python {fp.get('python', '?')}; {versions}"]


def _int8_lines(info: dict, cpu: dict) -> list[str]:
    """The int8 graph's quantizer settings and what they mean on this run's CPU."""
    keys = ("activation_type", "weight_type", "symmetric", "per_channel", "reduce_range", "calibrate_method",
            "calibration_samples")
    lines = ["- int8: " + ", ".join(f"{k}={info[k]}" for k in keys if k in info)
             + (f" ({info['reduce_range_reason']})" if info.get("reduce_range_reason") else "")]
    if cpu.get("int8_kernel") == "avx2" and "onnxruntime-cpu" in (info.get("targets") or []):
        if info.get("avx2_saturation_free") is False:
            lines.append(f"- **int8 on this CPU may saturate**: {cpu.get('model')} has no VNNI, and this graph's "
                         f"int8 pair sums reach {info.get('avx2_pair_sum_bound')} > 32767 in ONNX Runtime's "
                         "int16 intermediate (set precision.int8.reduce_range=True)")
        elif info.get("avx2_saturation_free"):
            lines.append(f"- int8 on this CPU: no VNNI, pair sums bounded by {info.get('avx2_pair_sum_bound') or 'U8U8'}"
                         " (no int16 saturation)")
    return lines


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


def _render_entry(lines: list, title: str, spec: dict, cpu: dict | None = None):
    lines += [title, ""]
    if spec.get("spec_file"):
        lines += [f"Spec: `{spec['spec_file']}`", ""]
    for key in ("onnx_file", "export_key"):
        if spec.get(key):
            lines.append(f"- {key}: `{spec[key]}`")
    if spec.get("precision_int8"):
        info = spec["precision_int8"]
        lines += _int8_lines(info, info.get("cpu") or cpu or {})
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
        memory = f", {body['host_memory']} host memory" if body.get("host_memory") else ""
        for phase, lat in (body.get("latency_phases_ms") or {}).items():
            label = f"{b} [{phase}{memory if phase in ('h2d', 'd2h') else ''}]"
            lines.append(f"| {label} | " + " | ".join(_num(lat.get(c), ".3f") for c in LATENCY_COLS) + " |")
        graph = body.get("latency_cuda_graph_ms")
        if graph:
            lines.append(f"| {b} (CUDA graph replay) | " + " | ".join(_num(graph.get(c), ".3f") for c in LATENCY_COLS)
                         + " |")
        elif body.get("cuda_graph_unavailable"):
            lines.append(f"| {b} (CUDA graph) | {body['cuda_graph_unavailable']} |" + " |" * (len(LATENCY_COLS) - 1))
    sweeps = {b: body["throughput"] for b, body in backends.items() if body.get("throughput")}
    if sweeps:
        lines += ["", "### Throughput by batch size (samples/s at the median latency)", "",
                  "| backend | batch | samples/s | median ms | p99 ms |", "|---|---|---|---|---|"]
        for b, sweep in sweeps.items():
            for batch, t in sorted(sweep.items(), key=lambda kv: int(kv[0])):
                lines.append(f"| {b} | {batch} | {_num(t['samples_per_s'], '.1f')} | "
                             f"{_num(t['latency_ms']['median'], '.3f')} | {_num(t['latency_ms']['p99'], '.3f')} |")
    _render_islands(lines, backends)
    lines.append("")


def _render_islands(lines: list, backends: dict):
    """fp32 islands (verify/islands_state.py): the pure policy graph next to the one with the found nodes in fp32."""
    found = {b: body["precision_islands"] for b, body in backends.items()
             if (body.get("precision_islands") or {}).get("nodes")}
    if not found:
        return
    lines += ["", "### fp32 islands (precision trade-off)", "",
              "| backend | graph | fp32 nodes | failing samples | accuracy | latency ms (CPU median) |",
              "|---|---|---|---|---|---|"]
    for b, e in found.items():
        for label, m in ((f"pure {e['policy']}", e.get("pure") or {}), ("with islands", e.get("mixed") or {})):
            failing = sum(int(o.get("failed") or 0) for o in (m.get("outputs") or {}).values())
            acc = m.get("accuracy") or {}
            lines.append(f"| {b} | {label} | {m.get('fp32_nodes', '–')} | {failing}/{m.get('samples', '?')} | "
                         f"{_num(acc.get('value'), '.4f')} | {_num(m.get('latency_ms'), '.3f')} |")
        lines.append(f"\n`{b}`: {e.get('snippet', '')} (searched on {e.get('searched_on', '?')}, "
                     f"{e.get('trials', '?')} trial graphs)\n")
