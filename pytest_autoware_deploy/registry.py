"""Named model families and evaluators, found through entry points so new ones need no core edits.

A family is a plain dict of ``"module:attr"`` strings (``builder``, ``loader``, ``evaluator``) that
fills the spec keys ``model.builder``, ``data.loader`` and ``evaluation.evaluator`` when a spec says
``family = '<name>'``: exactly what a user could write in the spec by hand.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

FAMILY_GROUP = "pytest_autoware_deploy.families"

EVALUATORS = {
    "classification": "pytest_autoware_deploy.evaluate.classification:ClassificationEvaluator",
    "detection2d": "pytest_autoware_deploy.evaluate.detection2d:Detection2DEvaluator",
    "detection3d": "pytest_autoware_deploy.evaluate.detection3d:Detection3DEvaluator",
}

FAMILY_KEYS = {"builder": ("model", "builder"), "loader": ("data", "loader"),
               "evaluator": ("evaluation", "evaluator"), "host": ("pipeline", "host")}


@lru_cache(maxsize=None)
def families() -> dict[str, dict]:
    found = {}
    for ep in entry_points(group=FAMILY_GROUP):
        found[ep.name] = ep.load()
    return found


def evaluator_ref(name_or_ref: str) -> str:
    return EVALUATORS.get(name_or_ref, name_or_ref)


def small_split_ref(family: str) -> str | None:
    """The family's ``synthetic`` entry: ``"module:function"`` writing a small deterministic split,
    ``(out_dir, frames) -> (spec key, path)`` -- what tests, CI and ``make data`` point its specs at."""
    return families().get(family, {}).get("synthetic")
