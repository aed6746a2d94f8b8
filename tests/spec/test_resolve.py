from __future__ import annotations

import pytest

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.resolve import resolve_callable

from ..conftest import write_tiny_spec


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_tiny_spec(tmp_path))


def test_resolves_from_the_spec_directory(spec):
    assert resolve_callable("tinymodel:build", spec, "model.builder").__name__ == "build"


@pytest.mark.parametrize("ref, message", [
    ("tinymodel.build", "expected 'module.path:attr'"),
    ("no_such_module:build", "cannot import module 'no_such_module'"),
    ("tinymodel:nope", "module 'tinymodel' has no attribute 'nope'"),
])
def test_errors_name_the_key(spec, ref, message):
    with pytest.raises(SpecError) as err:
        resolve_callable(ref, spec, "model.builder")
    assert "model.builder" in str(err.value) and message in str(err.value)
