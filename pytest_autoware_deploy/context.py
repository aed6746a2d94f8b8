"""What the plugin keeps for one pytest run on ``config.stash``: the deploy session (every spec's lazy state)
and the ``--deploy-baseline`` with how its machine differs from this one.

Why a module of its own: the hooks (plugin.py), the public fixtures (fixtures.py) and the suite's gate
tests (suite.py) all reach the session through the config; each imports this, none imports another.
"""

from __future__ import annotations

import pytest

from .session import DeploySession

SESSION_KEY = pytest.StashKey[DeploySession]()
BASELINE_KEY = pytest.StashKey[object]()  # report.baseline.Baseline, or None without --deploy-baseline
MACHINE_DIFF_KEY = pytest.StashKey[list]()


def deploy_session(config) -> DeploySession:
    return config.stash[SESSION_KEY]


def baseline_machine_differences(config) -> list[str]:
    """How the ``--deploy-baseline``'s machine differs from this one in what matters for latency
    ([] = the same; a baseline without a fingerprint is one line saying so). Computed once per process."""
    if MACHINE_DIFF_KEY not in config.stash:
        from .machine import fingerprint
        from .report.baseline import machine_differences

        config.stash[MACHINE_DIFF_KEY] = machine_differences(config.stash[BASELINE_KEY].machine, fingerprint())
    return config.stash[MACHINE_DIFF_KEY]
