"""``autoware-deploy deploy_cfg model_cfg [checkpoint] --work-dir DIR``: the seed's CLI, run through pytest.

It builds a pytest command line for the plugin and returns pytest's exit code, so scripts that
called AWML's ``deploy/main.py`` keep working and get test results, benchmark JSON and a report.
Arguments after ``--`` go to pytest unchanged (``-- -x --benchmark-json=bench.json``).
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser():
    p = argparse.ArgumentParser(prog="autoware-deploy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deploy_cfg", help="deploy spec (AWML-style Python config)")
    p.add_argument("model_cfg", nargs="?", default=None,
                   help="config whose 'model' section replaces the spec's (optional)")
    p.add_argument("checkpoint", nargs="?", default=None, help="checkpoint (not needed when export.mode='none')")
    p.add_argument("--work-dir", default=None, help="artifacts and reports (default: the spec's export.work_dir)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the spec's export.device)")
    p.add_argument("--backends", default=None, help="comma-separated backends, e.g. pytorch,onnx")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override spec keys")
    p.add_argument("--rebuild", action="store_true", help="ignore cached exports")
    return p


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


def main(argv=None) -> int:
    import pytest

    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ns = build_parser().parse_args(argv)
    return int(pytest.main(pytest_args(ns, extra)))


if __name__ == "__main__":
    sys.exit(main())
