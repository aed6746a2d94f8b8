"""Load every AWML deploy config and every model config of the bundled families from an AWML checkout.

    python tools/check_awml_files.py AWML_ROOT [AWML_ROOT ...] [--markdown FILE] [--no-build]

Each AWML_ROOT is a work tree (e.g. ``git archive <ref> | tar -x -C DIR``; never inside this repository).
Deploy configs (every generation: ``projects/*/configs/deploy/**``, ``projects/*/deploy/configs/**``,
``deployment/projects/*/config*/**``) go through the plugin's spec loader up to the point where a model
config and data would be needed: read (``_base_`` merged, ``custom_imports`` not imported), generation
detected, translated key by key and validated against the native schema. Model configs of the bundled
families go through ``load_model_config`` + ``build_model`` (the full-size network, random weights) + the
family's reading of the rest of the config (``model_sections``). Each file gets one row: the generation or
model type, ``ok`` or the one error the plugin raises, and the keys accepted but not used here.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

DEPLOY_GLOBS = ("projects/*/configs/deploy/**/*.py", "projects/*/deploy/configs/**/*.py",
                "deployment/projects/*/config*/**/*.py")
# AWML projects whose networks a bundled family builds (or, for BEVFusion and StreamPETR, whose files a user
# would bring: they are refused with one error naming what is missing)
MODEL_PROJECTS = ("CalibrationStatusClassification", "YOLOX", "YOLOX_opt", "YOLOX_opt_elan", "MobileNetv2",
                  "CenterPoint", "TransFusion", "BEVFusion", "FRNet", "StreamPETR")


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_deploy(path: Path) -> dict:
    from pytest_autoware_deploy.errors import SpecError
    from pytest_autoware_deploy.spec.dialects import detect, translate
    from pytest_autoware_deploy.spec.model_config import read_config
    from pytest_autoware_deploy.spec.schema import validate

    row = {"file": path, "kind": "deploy", "what": "?", "unused": []}
    try:
        raw = read_config(path, "spec")
        dialect = detect(raw)
        row["what"] = dialect.__name__.rsplit(".", 1)[-1]
        tr = translate(raw, path, dialect)
        validate(tr.native, path)
        row["unused"] = [u.key for u in tr.unused]
        row["result"] = "ok"
    except SpecError as exc:
        row["result"] = "refused: " + _short(exc)
    except Exception as exc:  # a crash is a bug here, not a refusal
        row["result"] = f"CRASH: {type(exc).__name__}: {_short(exc)}"
        row["trace"] = traceback.format_exc()
    return row


def check_model(path: Path, build: bool = True) -> dict | None:
    from pytest_autoware_deploy.errors import SpecError
    from pytest_autoware_deploy.models.mm_registry import build_model
    from pytest_autoware_deploy.spec.model_config import load_model_config, model_sections, read_config

    row = {"file": path, "kind": "model", "what": "?", "unused": []}
    try:
        raw = read_config(path, "model config")
    except SpecError as exc:
        row["result"] = "refused: " + _short(exc)
        return row
    except Exception as exc:
        row["result"] = f"CRASH: {type(exc).__name__}: {_short(exc)}"
        return row
    model = raw.get("model")
    if not isinstance(model, dict) or "type" not in model:
        return None  # a dataset/schedule/runtime base, not a model config
    row["what"] = str(model.get("type"))
    try:
        mc = load_model_config(path)
        row["what"] = f"{mc.model.get('type')} -> {mc.family}"
        model_sections(mc)
        if build:
            t0 = time.perf_counter()
            net = build_model(mc.model, str(mc.file))
            n = sum(p.numel() for p in net.parameters())
            row["what"] += f" ({n / 1e6:.2f} M params, built in {time.perf_counter() - t0:.1f} s)"
        row["result"] = "ok"
    except SpecError as exc:
        row["result"] = "refused: " + _short(exc)
    except Exception as exc:
        row["result"] = f"CRASH: {type(exc).__name__}: {_short(exc)}"
        row["trace"] = traceback.format_exc()
    return row


def deploy_files(root: Path):
    seen = set()
    for pattern in DEPLOY_GLOBS:
        for p in sorted(root.glob(pattern)):
            if p.name != "__init__.py" and p not in seen:
                seen.add(p)
                yield p


def model_files(root: Path):
    for project in MODEL_PROJECTS:
        base = root / "projects" / project / "configs"
        for p in sorted(base.rglob("*.py")) if base.is_dir() else ():
            if "deploy" not in p.relative_to(base).parts and p.name != "__init__.py":
                yield p


def run(roots, build=True):
    rows = []
    for root in roots:
        root = Path(root).resolve()
        for p in deploy_files(root):
            rows.append({**check_deploy(p), "root": root})
        for p in model_files(root):
            row = check_model(p, build)
            if row is not None:
                rows.append({**row, "root": root})
    return rows


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def table(rows, width=260) -> str:
    lines = ["| tree | file | kind | generation / model | result | accepted, not used here |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        result = r["result"].replace(f"{r['root']}/", "")  # paths in messages relative to the AWML root
        if len(result) > width:
            result = result[:width - 1] + "…"
        lines.append(f"| {r['root'].name} | `{r['file'].relative_to(r['root'])}` | {r['kind']} | {_cell(r['what'])} | "
                     f"{_cell(result)} | {_cell(', '.join(r['unused']))} |")
    return "\n".join(lines)


def summary(rows) -> str:
    out = []
    for kind in ("deploy", "model"):
        sel = [r for r in rows if r["kind"] == kind]
        ok = sum(r["result"] == "ok" for r in sel)
        refused = sum(r["result"].startswith("refused") for r in sel)
        crash = sum(r["result"].startswith("CRASH") for r in sel)
        out.append(f"{kind} configs: {len(sel)} checked, {ok} loaded, {refused} refused with one error, "
                   f"{crash} crashed")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", help="AWML work trees")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--no-build", action="store_true", help="check model configs without building the networks")
    ap.add_argument("--traces", action="store_true", help="print the traceback of each crash")
    args = ap.parse_args(argv)
    rows = run(args.roots, build=not args.no_build)
    text = table(rows) + "\n\n" + summary(rows)
    print(text)
    if args.traces:
        for r in rows:
            if "trace" in r:
                print(f"\n--- {r['file']}\n{r['trace']}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 1 if any(r["result"].startswith("CRASH") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
