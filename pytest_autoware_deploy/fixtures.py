"""Public session fixtures: build on them to write your own deployment tests.

- ``deploy_spec``: the validated DeploySpec (parametrized over every ``--deploy-config``)
- ``deploy_samples``: the spec's samples (dicts with ``inputs`` and ``target``)
- ``pytorch_model``: the built ``torch.nn.Module`` with its checkpoint, in eval mode
- ``onnx_model``: the exported (or, in eval-only mode, given) ONNX artifact; ``.path`` is the file
- ``deploy_runner``: ``deploy_runner("onnx")`` -> an activated runner (``infer(feed) -> outputs``)
- ``deploy_state``: the spec's session state (cached outputs, evaluations) for advanced use
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from .errors import BackendUnavailable, DeployError
from .spec.load import parse_backend


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


@pytest.fixture(scope="session")
def deploy_session(request):
    from .plugin import deploy_session as get

    return get(request.config)


@pytest.fixture(scope="session")
def deploy_spec(request, deploy_session):
    return deploy_session.specs[request.param]


@pytest.fixture(scope="session")
def deploy_state(deploy_session, deploy_spec):
    return deploy_session.state(deploy_spec.name)


@pytest.fixture(scope="session")
def deploy_samples(deploy_state):
    with user_errors():
        return deploy_state.samples


@pytest.fixture(scope="session")
def pytorch_model(deploy_state):
    with user_errors():
        return deploy_state.model


@pytest.fixture(scope="session")
def onnx_model(deploy_state):
    with user_errors():
        return deploy_state.onnx


@pytest.fixture(scope="session")
def deploy_runner(deploy_state):
    def get(backend: str):
        with user_errors():
            return deploy_state.runner(parse_backend(backend, deploy_state.spec.file))

    return get
