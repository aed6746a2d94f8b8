"""``autoware-deploy merge DIR... [--out DIR] [--baseline REPORT]``: one evaluation from the shards of several jobs.

Each job ran a spec with ``--deploy-shard I/N`` (a CI matrix, several machines) and stored its per-sample
results under its work dir (evaluate/shards.py). The merge finds every shard file under the given
directories, refuses incomplete or inconsistent shard sets, computes each (spec, backend)'s metrics over all
shards -- equal to a single run's -- and then does what the sharded jobs skipped: ``test_accuracy``'s checks
(``min_accuracy``, the policy's ``max_drop`` against pytorch on the same device) and, with ``--baseline``,
``test_gate_accuracy``'s. It writes ``deploy_report.json``/``.md`` with the merged evaluations to ``--out``,
prints the cross-backend summary, and exits 1 when a check fails (2 for unusable input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DeployError


def build_parser():
    p = argparse.ArgumentParser(prog="autoware-deploy merge", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", metavar="DIR", help="directories holding the jobs' shard files (searched "
                                                         "recursively: work dirs, downloaded CI artifacts)")
    p.add_argument("--out", default=None, help="where deploy_report.json/.md go (default: the first DIR)")
    p.add_argument("--baseline", default=None, metavar="REPORT",
                   help="a stored deploy_report.json/baseline: gate the merged metrics on it as test_gate_accuracy "
                        "does")
    return p


def merge(dirs, baseline_path=None, out=None) -> tuple[dict, list[str]]:
    """``(report specs, failures)``: the merged evaluations in deploy_report.json's layout and every failed check
    (the evaluators' figures go under ``out`` when given)."""
    from .evaluate.shards import find_shards, merge_set
    from .report.baseline import accuracy_breach, baseline_backend, read_baseline

    sets = find_shards(dirs)
    specs: dict[str, dict] = {}
    checks: dict[tuple[str, str], dict] = {}
    for (spec, backend), shard_set in sorted(sets.items()):
        result = merge_set(shard_set, out)
        entry = specs.setdefault(spec, {"backends": {}, "spec_file": shard_set.headers[1]["spec_file"]})
        entry["backends"].setdefault(backend, {})["evaluation"] = result
        checks[(spec, backend)] = shard_set.headers[1]["checks"]
    baseline = read_baseline(baseline_path).specs if baseline_path else None
    failures = []
    for (spec, backend), check in sorted(checks.items()):
        result = specs[spec]["backends"][backend]["evaluation"]
        metric = result["primary_metric"]
        value = result[metric]
        where = f"{spec}, backend {backend}, {result.get('num_samples', '?')} samples"
        if check["min_accuracy"] is not None and value < check["min_accuracy"]:
            failures.append(f"{where}: {metric} {value:.4f} < min_accuracy {check['min_accuracy']:.4f}")
        ref_name = check["drop_reference"]
        if check["max_drop"] is not None and ref_name:
            ref = specs[spec]["backends"].get(ref_name, {}).get("evaluation")
            if ref is None:
                failures.append(f"{where}: max_drop needs {ref_name}'s merged evaluation; no shards of it were found")
            elif ref[metric] - value > check["max_drop"]:
                failures.append(f"{where}: {metric} dropped {ref[metric] - value:.4f} vs {ref_name} "
                                f"({ref[metric]:.4f} -> {value:.4f}), max_drop {check['max_drop']:.4f}")
        if baseline is not None:
            base = (baseline_backend(baseline, spec, backend) or {}).get("evaluation")
            if base:
                max_drop = check["gate_max_drop"] if check["gate_max_drop"] is not None else (check["max_drop"] or 0.0)
                breach = accuracy_breach(base, result, max_drop)
                if breach:
                    failures.append(f"{where}: accuracy regressed vs baseline: {breach}")
    return specs, failures


def main(argv=None) -> int:
    from .report.store import ReportStore
    from .report.summary import render_summary
    from .report.writer import write_reports

    ns = build_parser().parse_args(argv)
    out = Path(ns.out or ns.dirs[0])
    try:
        specs, failures = merge(ns.dirs, ns.baseline, out)
    except DeployError as exc:
        print(f"autoware-deploy merge: {exc}", file=sys.stderr)
        return 2
    store = ReportStore()
    for name, body in specs.items():
        store.merge({name: body}, {name: str(out)})
    written = write_reports(store)
    print(render_summary({"specs": specs}))
    for path in written:
        print(f"[deploy] merged report: {path}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"[deploy] merge: {sum(len(s['backends']) for s in specs.values())} (spec, backend) evaluations from "
          f"shards, {len(failures)} failed check(s)")
    return 1 if failures else 0
