"""Issue 13 §5: every profile shape is verified, and one shape off opt (where engines tuned for opt go wrong),
for a model and for each stage of a pipeline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.cases import off_opt_shapes, shape_cases
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.model import InputSpec

from ..conftest import write_tiny_spec


def declared(name, mn, opt, mx):
    return InputSpec(name, "float32", tuple(opt), tuple(mn), tuple(mx))


def test_batch_axis_moves_up_by_one_and_down_at_max():
    assert off_opt_shapes([declared("x", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))]) == (("x", (5, 3, 8, 8)),)
    assert off_opt_shapes([declared("x", (1, 3, 8, 8), (8, 3, 8, 8), (8, 3, 8, 8))]) == (("x", (7, 3, 8, 8)),)


def test_fixed_batch_moves_the_first_dynamic_side_by_its_stride():
    # 128/416/640 share the factor 32: the next valid image side, not 417
    assert off_opt_shapes([declared("x", (1, 3, 128, 128), (1, 3, 416, 416), (1, 3, 640, 640))]) == \
        (("x", (1, 3, 448, 416)),)


def test_inputs_sharing_an_axis_move_together_and_static_ones_stay():
    shapes = off_opt_shapes([declared("voxels", (1, 20, 4), (5000, 20, 4), (30000, 20, 4)),
                             declared("coors", (1, 4), (5000, 4), (30000, 4)),
                             InputSpec("scale", "float32", (1,))])
    assert shapes == (("voxels", (5001, 20, 4)), ("coors", (5001, 4)), ("scale", (1,)))


def test_no_range_no_off_opt_case():
    assert off_opt_shapes([declared("x", (2, 3), (2, 3), (2, 3))]) is None


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_off_opt_stays_in_the_profile_and_moves_one_axis(data):
    rank = data.draw(st.integers(1, 4))
    mn = data.draw(st.lists(st.integers(1, 64), min_size=rank, max_size=rank))
    extra = data.draw(st.lists(st.integers(0, 64), min_size=rank, max_size=rank))
    mx = [a + b for a, b in zip(mn, extra)]
    opt = [data.draw(st.integers(a, b)) for a, b in zip(mn, mx)]
    result = off_opt_shapes([declared("x", mn, opt, mx)])
    if mn == mx:
        assert result is None
        return
    (_, shape), = result
    moved = [a for a in range(rank) if shape[a] != opt[a]]
    assert moved == [next(a for a in range(rank) if mn[a] < mx[a])]
    assert all(lo <= v <= hi for lo, v, hi in zip(mn, shape, mx))


def test_spec_cases_are_min_opt_max_then_off_opt(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path / "p", extra="""
        backend_config = dict(model_inputs=[dict(name='image', min_shape=(1, 3, 16, 16), opt_shape=(2, 3, 16, 16),
                                                 max_shape=(6, 3, 16, 16))])
    """))
    assert [c.id for c in shape_cases(spec)] == ["1x3x16x16", "2x3x16x16", "6x3x16x16", "3x3x16x16"]


def test_pipeline_stages_are_verified_at_their_profile_shapes():
    """The bundled CenterPoint spec: its voxel encoder stage declares min/opt/max; the stage's verification runs
    on the recorded inputs and at each of them and one off opt (collected ids)."""
    from pathlib import Path

    from pytest_autoware_deploy.suite import stage_shape_cases

    spec = load_spec(Path(__file__).resolve().parents[2] / "deploy_specs" / "centerpoint.py")
    ids = [c.id for c in stage_shape_cases(spec, "pts_voxel_encoder")]
    assert ids == ["native", "1x20x10", "5000x20x10", "30000x20x10", "5001x20x10"]
    assert [c.id for c in stage_shape_cases(spec, "pts_backbone_neck_head")] == ["native"]
