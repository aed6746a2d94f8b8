"""``autoware-deploy deploy_cfg model_cfg [checkpoint] --work-dir DIR``: AWML's deploy CLIs, run through pytest.

It builds a pytest command line for the plugin and returns pytest's exit code, so scripts that
called AWML's ``deploy/main.py`` keep working and get test results, benchmark JSON and a report.
Both of AWML's shapes are accepted, with the files AWML publishes, unedited:

- ``autoware-deploy DEPLOY_CFG MODEL_CFG [CHECKPOINT] --work-dir DIR [--device cpu]`` (the seed README's
  ``projects/<Project>/deploy/main.py``; the deploy config may be any generation, spec/dialects);
- ``autoware-deploy <project> DEPLOY_CFG MODEL_CFG [--log-level INFO] [--rot-y-axis-reference]``
  (``python -m deployment.cli.main``, tier4/AWML PR #115): the project names the model family.

``autoware-deploy merge DIR...`` merges the evaluation shards of ``--deploy-shard I/N`` jobs (merge.py).

At the end the cross-backend summary AWML's logs end with is printed (report/summary.py), and written to
the deploy config's ``deploy_log_path`` when it has one. Arguments after ``--`` go to pytest unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# AWML project names (deployment/projects/<name>, projects/<Name>) -> the bundled family
PROJECTS = {"centerpoint": "centerpoint", "calibration": "calibration_status_classification",
            "calibrationstatusclassification": "calibration_status_classification",
            "yolox": "yolox", "yolox_opt": "yolox_opt_traffic_light", "yolox_opt_elan": "yolox_opt_traffic_light",
            "mobilenetv2": "mobilenetv2_traffic_light", "transfusion": "transfusion_lidar"}


def build_parser():
    p = argparse.ArgumentParser(prog="autoware-deploy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deploy_cfg", help="deploy config (any AWML generation, or the plugin's spec); with the newest "
                                      "CLI's shape, the project name comes first")
    p.add_argument("model_cfg", nargs="?", default=None,
                   help="AWML model config (type= dicts), or a config whose 'model' section replaces the spec's")
    p.add_argument("checkpoint", nargs="?", default=None, help="checkpoint (not needed when export.mode='none')")
    p.add_argument("extra", nargs="?", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work-dir", default=None, help="artifacts and reports (default: the spec's export.work_dir)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N: every backend on this device")
    p.add_argument("--backends", default=None, help="comma-separated backends, e.g. pytorch,onnx")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override spec keys")
    p.add_argument("--rebuild", action="store_true", help="ignore cached exports")
    p.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                   help="accepted for AWML's CLI; pytest's own -v/-q set the verbosity")
    p.add_argument("--rot-y-axis-reference", action="store_true",
                   help="AWML CenterPoint flag, refused here: the bundled CenterPoint exports the mmdet3d rotation "
                        "convention only")
    p.add_argument("--no-summary", action="store_true", help="do not print the cross-backend summary")
    return p


def normalize(ns, parser):
    """The newest CLI's ``<project> deploy_cfg model_cfg``: the first positional is a project name."""
    ns.project = None
    first = ns.deploy_cfg
    if ns.model_cfg and not first.endswith(".py") and not Path(first).is_file():
        ns.project = first
        ns.deploy_cfg, ns.model_cfg, ns.checkpoint = ns.model_cfg, ns.checkpoint, ns.extra
    elif ns.extra is not None:
        parser.error(f"unexpected argument {ns.extra!r}")
    if ns.project is not None:
        key = ns.project.lower().replace("-", "_")
        from .registry import families

        if key not in PROJECTS and key not in families():
            parser.error(f"unknown project {ns.project!r}; known: {', '.join(sorted(set(PROJECTS) | set(families())))}")
        ns.family = PROJECTS.get(key, key)
    if ns.rot_y_axis_reference:
        parser.error("--rot-y-axis-reference: the bundled CenterPoint exports mmdet3d's rotation convention only "
                     "(sin/cos of yaw as trained); the flag would change the graph Autoware reads")
    return ns


def pytest_args(ns, extra) -> list[str]:
    args = ["--deploy-config", ns.deploy_cfg]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):  # entry points off: name the plugins
        args = ["-p", "pytest_autoware_deploy.plugin", "-p", "pytest_benchmark.plugin", *args]
    if ns.model_cfg:
        args += ["--deploy-model-config", ns.model_cfg]
    if ns.checkpoint:
        args += ["--deploy-checkpoint", ns.checkpoint]
    if ns.work_dir:
        args += ["--deploy-work-dir", ns.work_dir]
    if ns.device:
        args += ["--deploy-device", ns.device]
    if ns.backends:
        args += ["--deploy-backends", ns.backends]
    if ns.cfg_options:
        args += ["--deploy-cfg-options", *ns.cfg_options]
    if ns.rebuild:
        args.append("--deploy-rebuild")
    # the spec's tests only: not the project's testpaths, its ini addopts or a stale cache
    return args + ["-p", "no:cacheprovider", "-o", "addopts=", "-rfEs", *extra]


def _load(ns):
    """The spec as the plugin will load it (for the project check and the summary); None when it cannot be
    loaded (pytest then reports the same error as a usage error)."""
    from .errors import DeployError
    from .spec.load import load_spec, parse_cfg_options

    try:
        return load_spec(ns.deploy_cfg, cfg_options=parse_cfg_options(ns.cfg_options), work_dir=ns.work_dir,
                         device=ns.device, model_config=ns.model_cfg, checkpoint=ns.checkpoint)
    except DeployError:
        return None


def print_summary(spec, stream=None) -> str | None:
    from .report.summary import summary_from_report

    text = summary_from_report(spec.work_dir)
    if text is None:
        return None
    print(text, file=stream or sys.stdout, flush=True)
    log = (spec.dialect or {}).get("log_path")
    if log:
        path = Path(log)
        path = path if path.is_absolute() else spec.work_dir / path
        from .export.cache import atomic_write_text

        atomic_write_text(path, text + "\n")
        print(f"[deploy] summary also written to {path} (deploy_log_path)", file=stream or sys.stdout)
    return text


def main(argv=None) -> int:
    import pytest

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:  # the shards of a --deploy-shard run (merge.py)
        from .merge import main as merge_main

        return merge_main(argv[1:])
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = build_parser()
    ns = normalize(parser.parse_args(argv), parser)
    spec = _load(ns)
    if spec is not None and ns.project is not None and spec.cfg["family"] != ns.family:
        print(f"autoware-deploy: project {ns.project!r} deploys the {ns.family} family, but the model config "
              f"builds {spec.cfg['family']!r}", file=sys.stderr)
        return 4
    code = int(pytest.main(pytest_args(ns, extra)))
    if spec is not None and not ns.no_summary:
        print_summary(spec)
    return code


if __name__ == "__main__":
    sys.exit(main())
