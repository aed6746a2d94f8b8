"""Public session fixtures: build on them to write your own deployment tests.

- ``deploy_spec``: the validated DeploySpec (parametrized over every ``--deploy-config``)
- ``deploy_samples``: the spec's samples (dicts with ``inputs`` and ``target``)
- ``pytorch_model``: the built ``torch.nn.Module`` with its checkpoint, in eval mode
- ``onnx_model``: the exported (or, in eval-only mode, given) ONNX artifact; ``.path`` is the file
- ``deploy_runner``: ``deploy_runner("onnx")`` -> an activated runner (``infer(feed) -> outputs``); any
  registered backend as the spec writes it (``"tensorrt_rtx:fp16"``, ``"onnx@cuda:0"``)
- ``deploy_state``: the spec's session state (cached outputs, evaluations) for advanced use
"""

from __future__ import annotations

import pytest

from .context import deploy_session as session_of
from .outcomes import cannot_run_here, is_cannot_run_here, user_errors  # noqa: F401 (public since the seed)
from .spec.load import parse_backend


@pytest.fixture(scope="session")
def deploy_session(request):
    return session_of(request.config)


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
