"""How a deploy test ends when something is wrong: a short failure for a user's mistake, a 'cannot run here'
skip for a backend or device this machine lacks (a failure in strict mode, see plugin.py).

Why a module of its own: the suite's tests, the public fixtures and the plugin's strict-mode hooks all
use it; with it in fixtures.py the plugin and the fixtures imported each other.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from .errors import BackendUnavailable, DeployError


def cannot_run_here(reason: str):
    """Skip the current test because something the spec asked for cannot run on this machine (a backend's
    runtime or device is missing). A CI gate cannot tell a skip from a pass, so strict mode
    (``--deploy-strict`` or the spec key ``strict``) turns exactly these skips into failures with the same
    reason (plugin.py); deliberate skips (``export.verify=False``, a backend the baseline lacks) stay skips.

    A plain pytest skip carrying a mark, so that without strict mode it reads like any other skip."""
    __tracebackhide__ = True
    skip = pytest.skip.Exception(msg=reason)
    skip.cannot_run_here = True
    raise skip


def is_cannot_run_here(exc: BaseException) -> bool:
    return isinstance(exc, pytest.skip.Exception) and getattr(exc, "cannot_run_here", False)


@contextmanager
def user_errors():
    """A DeployError becomes a short failure (no traceback); a missing backend becomes a 'cannot run
    here' skip (a failure in strict mode)."""
    try:
        yield
    except BackendUnavailable as exc:
        cannot_run_here(str(exc))
    except DeployError as exc:  # pytest.fail, unchained: the message shows once, not twice
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
