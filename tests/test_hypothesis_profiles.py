"""Hypothesis profiles: CI derandomized (reproducible), local runs random; chosen by ``CI=true``."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import hypothesis_profile


@pytest.mark.parametrize("environ, expected", [
    ({"CI": "true"}, "ci"), ({"CI": "TRUE"}, "ci"), ({"CI": "1"}, "ci"),
    ({}, "dev"), ({"CI": "false"}, "dev"), ({"CI": ""}, "dev"), ({"GITHUB_ACTIONS": "true"}, "dev"),
])
def test_ci_true_selects_the_ci_profile(environ, expected):
    assert hypothesis_profile(environ) == expected


def test_ci_profile_is_derandomized_and_dev_profile_explores_at_random():
    ci, dev = settings.get_profile("ci"), settings.get_profile("dev")
    assert ci.derandomize and ci.database is None and ci.deadline is None
    # `dev` must not inherit the ci settings Hypothesis auto-loads when it sees any CI variable
    assert not dev.derandomize and dev.database is not None


def test_this_run_uses_the_profile_its_environment_selects(request):
    expected = request.config.getoption("hypothesis_profile") or hypothesis_profile(os.environ)
    assert settings.get_current_profile_name() == expected
    assert settings.default.derandomize == settings.get_profile(expected).derandomize


def _examples_of_one_run(profile: str) -> list:
    seen = []

    @settings(settings.get_profile(profile), max_examples=20, database=None)
    @given(st.integers())
    def draw(x):
        seen.append(x)

    draw()
    return seen


def test_ci_profile_repeats_its_examples_and_dev_profile_does_not():
    assert _examples_of_one_run("ci") == _examples_of_one_run("ci")
    assert _examples_of_one_run("dev") != _examples_of_one_run("dev")
