"""What an evaluator is: any class with ``update(outputs, target)``, ``compute()`` and ``primary_metric``.

``compute()`` returns a JSON-able dict that holds ``primary_metric``; an evaluator may add
``plot(result, directory, title) -> list[Path]`` for report figures. Users' evaluators named
in a spec as ``"module:Class"`` follow the same protocol; no base class is required.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from ..registry import evaluator_ref
from ..spec.resolve import call_from_spec


def make_evaluator(spec):
    ecfg = spec.cfg["evaluation"]
    evaluator = call_from_spec(evaluator_ref(ecfg["evaluator"]), ecfg["kwargs"], spec, "evaluation.evaluator",
                               "evaluation.kwargs")
    for attr in ("update", "compute", "primary_metric"):
        if not hasattr(evaluator, attr):
            raise SpecError(spec.file, "evaluation.evaluator", f"{ecfg['evaluator']} has no '{attr}' "
                            "(an evaluator needs update(outputs, target), compute() and primary_metric)")
    return evaluator


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on CI or GPU machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, directory, kind: str, title: str) -> Path:
    """Write ``fig`` as ``<directory>/<kind>_<title made file-safe>.png`` and close it (figures pile up otherwise)."""
    plt = pyplot()
    path = Path(directory) / f"{kind}_{title.replace('/', '_').replace('@', '_').replace(':', '')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
