"""Which shapes are verified and which batch sizes the throughput sweep covers."""

from __future__ import annotations

from pytest_autoware_deploy.cases import shape_cases, throughput_batches
from pytest_autoware_deploy.spec.load import load_spec

from .conftest import write_tiny_spec


def _spec(tmp_path, extra=""):
    return load_spec(write_tiny_spec(tmp_path, extra=extra))


def test_dynamic_batch_without_declared_shapes_sweeps_the_verified_batches(tmp_path):
    spec = _spec(tmp_path)
    assert [c.id for c in shape_cases(spec)] == ["b1", "b2"]
    assert throughput_batches(spec) == [1, 2]


def test_declared_range_sweeps_powers_of_two_and_both_ends(tmp_path):
    spec = _spec(tmp_path, """
        backend_config = dict(model_inputs=[dict(name='image', min_shape=(1, 3, 16, 16), opt_shape=(2, 3, 16, 16),
                                                 max_shape=(6, 3, 16, 16))])
    """)
    assert throughput_batches(spec) == [1, 2, 4, 6]


def test_explicit_batch_sizes_win(tmp_path):
    spec = _spec(tmp_path, "benchmark = dict(batch_sizes=[8, 1, 8])")
    assert throughput_batches(spec) == [1, 8]
