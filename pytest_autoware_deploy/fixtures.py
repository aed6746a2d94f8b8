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


@contextmanager
def user_errors():
    """A DeployError becomes a short failure (no traceback); a missing backend becomes a skip."""
    try:
        yield
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    except DeployError as exc:
        pytest.fail(str(exc), pytrace=False)


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
