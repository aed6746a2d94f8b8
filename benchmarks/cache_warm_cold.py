"""Artifact cache: a cold run (empty work dir) vs a warm re-run of the bundled spec, through pytest.

    .venv/bin/python benchmarks/cache_warm_cold.py [--json out.json] [--pairs 2]

Each run is ``python -m pytest -p no:cacheprovider --deploy-config=SPEC --deploy-work-dir=DIR
--deploy-cfg-options "precision.policies=['auto','fp16','int8']"`` in a subprocess (the whole spec:
export, fp16 and int8 graphs, verification, evaluation, latency). Measured per run:

- export phase: the sum of ``artifacts.*.export_s`` in ``deploy_report.json`` (the session times
  each artifact step: content key, cache look-up, build if needed, publish; building the PyTorch
  model, which the pytorch backend needs anyway, is outside it);
- end to end: wall time of the subprocess.

The warm run must build nothing (``onnx_rebuilt: false``, every ``artifacts.*.built`` false) and touch
no file under ``<work_dir>/<spec>/cache`` nor the published ``<work_dir>/<save_file>`` (size, mtime and
sha256 of every file compared before and after). Goal: export phase warm/cold < 5 %.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_autoware_deploy.bench.measure import (finish, file_record, format_table,  # noqa: E402
                                                  load_average, summarize, tree_changes,
                                                  tree_snapshot)

DEFAULT_SPEC = ROOT / "deploy_specs" / "calibration_status_classification.py"
DEFAULT_POLICIES = "precision.policies=['auto','fp16','int8']"
GOAL_EXPORT_RATIO = 0.05


def run_pytest(args, work_dir: Path, label: str) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--deploy-config={args.spec}",
           f"--deploy-work-dir={work_dir}", "--deploy-cfg-options", *args.cfg_options]
    log = work_dir.parent / f"{label}.log"  # beside the pair's work dir, kept
    start = time.perf_counter()
    with open(log, "w") as out:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"{label}: pytest exited with {rc}; see {log}")
    report = json.loads((work_dir / "deploy_report.json").read_text())
    [info] = report["specs"].values()
    artifacts = info.get("artifacts")
    if not artifacts:
        raise SystemExit(f"{label}: deploy_report.json has no 'artifacts' timings (plugin too old?)")
    return {"label": label, "wall_s": wall, "export_s": sum(a["export_s"] for a in artifacts.values()),
            "artifacts": artifacts, "onnx_rebuilt": info.get("onnx_rebuilt"), "onnx_file": info.get("onnx_file"),
            "log": str(log),
            "command": cmd}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(DEFAULT_SPEC))
    ap.add_argument("--work-dir", default=str(ROOT / "work_dirs" / "benchmarks" / "cache_warm_cold"),
                    help="each pair runs in a new, empty directory made inside; pytest logs are kept here")
    ap.add_argument("--keep", action="store_true", help="keep each pair's work dir (removed by default)")
    ap.add_argument("--cfg-options", nargs="+", default=[DEFAULT_POLICIES],
                    help=f"--deploy-cfg-options of every run (default: {DEFAULT_POLICIES})")
    ap.add_argument("--pairs", type=int, default=2, help="(cold, warm) pairs, each in a new empty work dir")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    load_before = load_average()
    args.spec = str(Path(args.spec).resolve())  # the runs start in the project root
    base = Path(args.work_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)

    pairs = []
    for k in range(args.pairs):
        work_dir = Path(tempfile.mkdtemp(prefix=f"work{k}.", dir=base))  # empty: the cold run builds all
        cold = run_pytest(args, work_dir, f"cold{k}")
        [spec_dir] = [p for p in work_dir.iterdir() if (p / "cache").is_dir()]
        published = Path(cold["onnx_file"])  # <work_dir>/<onnx_config.save_file>, copied from the cache

        def snapshot():
            return {**{f"cache/{rel}": rec for rel, rec in tree_snapshot(spec_dir / "cache").items()},
                    published.name: file_record(published)}

        before = snapshot()
        warm = run_pytest(args, work_dir, f"warm{k}")
        warm["cache_changes"] = tree_changes(before, snapshot())
        warm["built_any"] = bool(warm["onnx_rebuilt"]) or any(a["built"] for a in warm["artifacts"].values())
        pairs.append({"work_dir": str(work_dir), "checked_files": sorted(before), "cold": cold, "warm": warm,
                      "export_ratio": warm["export_s"] / cold["export_s"],
                      "e2e_ratio": warm["wall_s"] / cold["wall_s"]})
        print(f"pair {k}: cold {cold['wall_s']:.1f}s, warm {warm['wall_s']:.1f}s", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(work_dir)

    def row(r):
        per = ", ".join(f"{name} {a['export_s']:.3f}s{' built' if a['built'] else ''}"
                        for name, a in r["artifacts"].items())
        return [r["label"], f"{r['export_s']:.3f}", f"{r['wall_s']:.1f}", str(r["onnx_rebuilt"]).lower(), per]

    print(f"\nArtifact cache: {spec_dir.name}, {' '.join(args.cfg_options)}, {args.pairs} pairs (cold, warm), "
          f"under {base}\n")
    print(format_table(["run", "export phase s", "end to end s", "onnx_rebuilt", "artifacts"],
                       [row(p[w]) for p in pairs for w in ("cold", "warm")]))
    export_ratio = summarize([p["export_ratio"] for p in pairs])
    e2e_ratio = summarize([p["e2e_ratio"] for p in pairs])
    untouched = all(not p["warm"]["cache_changes"] for p in pairs)
    nothing_built = not any(p["warm"]["built_any"] for p in pairs)
    ok = export_ratio["max"] < GOAL_EXPORT_RATIO and untouched and nothing_built
    print(f"\nexport phase warm/cold: median {export_ratio['median']:.4f} ({100 * export_ratio['median']:.2f} %), "
          f"max {100 * export_ratio['max']:.2f} %; goal < {100 * GOAL_EXPORT_RATIO:.0f} %")
    print(f"end to end warm/cold:   median {e2e_ratio['median']:.3f} "
          f"(pairs {e2e_ratio['min']:.3f}-{e2e_ratio['max']:.3f})")
    print(f"warm runs built nothing (onnx_rebuilt false, artifacts.*.built false): {nothing_built}")
    print(f"files under cache/ and the published ONNX untouched by the warm runs "
          f"({len(pairs[0]['checked_files'])} files, size + mtime_ns + sha256): {untouched}")
    for p in pairs:
        for change in p["warm"]["cache_changes"]:
            print(f"  {p['warm']['label']}: {change}")
    print(f"goal {'met' if ok else 'MISSED'}")

    result = {"benchmark": "cache_warm_cold", "spec": spec_dir.name, "cfg_options": args.cfg_options,
              "pairs": pairs, "export_ratio": export_ratio, "e2e_ratio": e2e_ratio, "cache_untouched": untouched,
              "warm_built_nothing": nothing_built, "goal_export_ratio": GOAL_EXPORT_RATIO, "goal_met": ok}
    return finish(result, args.json, load_before, ROOT)


if __name__ == "__main__":
    main()
