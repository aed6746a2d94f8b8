"""export/onnx.py and export/signature.py: input names vs forward, the exporter's warnings kept with the export."""

from __future__ import annotations

import keyword
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.export.onnx import export_onnx
from pytest_autoware_deploy.export.pytorch_model import build_model
from pytest_autoware_deploy.export.signature import check_forward_inputs, forward_input_problems
from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.session import SpecState
from pytest_autoware_deploy.spec.load import load_spec

from ..conftest import write_pipeline_spec, write_tiny_spec


def _forward(params: str):
    ns = {}
    exec(f"def forward({params}):\n    pass", ns)
    return ns["forward"]


NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s)),
                 min_size=1, max_size=5, unique=True)


@given(names=NAMES)
def test_names_equal_to_forward_parameters_fit(names):
    assert forward_input_problems(_forward(", ".join(names)), names) == []


@given(names=NAMES)
def test_a_name_too_many_or_too_few_is_reported(names):
    forward = _forward(", ".join(names))
    assert any("too many" in p for p in forward_input_problems(forward, names + ["zz_extra"]))
    assert any("would get no input" in p for p in forward_input_problems(forward, names[:-1]))


@given(names=NAMES.filter(lambda n: len(n) >= 2), data=st.data())
def test_parameter_names_in_another_order_are_reported(names, data):
    i, j = data.draw(st.lists(st.integers(0, len(names) - 1), min_size=2, max_size=2, unique=True))
    swapped = list(names)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    problems = forward_input_problems(_forward(", ".join(names)), swapped)
    assert any(f"'{names[i]}' is input {j + 1} but forward's parameter {i + 1}" in p for p in problems)


@pytest.mark.parametrize("params, names, expected", [
    ("x", ["image"], None),                                  # graph names need not be parameter names
    ("x, scale=1.0", ["image"], None),                       # a defaulted parameter may stay unfed
    ("*args", ["a", "b", "c"], None),                        # *args takes any number
    ("voxels, *rest", ["voxels", "num_points"], None),
    ("image, mask", ["image", "msk"], "looks like a misspelling of forward's parameter 'mask'"),
    ("image, mask", ["images", "masks"], None),              # no name is a parameter's: names are free
    ("**inputs", ["image"], "by keyword only (**kwargs)"),
    ("x, *, flag", ["x"], "keyword-only parameter(s) ['flag']"),
])
def test_forward_signatures(params, names, expected):
    problems = forward_input_problems(_forward(params), names)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_mismatch_is_one_spec_error_naming_key_names_and_signature(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path, extra="onnx_config = dict(input_names=['image', 'mask'])"))
    with pytest.raises(SpecError) as err:
        build_model(spec)
    text = str(err.value)
    assert text.startswith(f"{spec.file}: onnx_config.input_names: ['image', 'mask'] do not fit Tiny.forward(x)")
    assert "['mask'] too many" in text


def test_a_pipeline_checks_each_stage_against_its_own_names(tmp_path):
    spec = load_spec(write_pipeline_spec(tmp_path, extra="""
        pipeline = dict(host='tinypipe:Host', kwargs=dict(grid=4), stages=[
            dict(name='encoder', module='encoder', input_names=['items'], output_names=['features']),
            dict(name='head', module='head', input_names=['grid', 'extra'], output_names=['logits'])])
    """))
    with pytest.raises(SpecError) as err:
        build_model(spec)
    assert "pipeline.stages[1].input_names: ['grid', 'extra'] do not fit Head.forward(grid)" in str(err.value)


def test_a_pipelines_own_input_names_are_not_checked_against_its_forward(tmp_path):
    spec = load_spec(write_pipeline_spec(tmp_path))
    check_forward_inputs(build_model(spec), spec)  # TwoStage has no forward: its inputs go to the host code


BAKED_BATCH = "model = dict(builder='tinymodel:build', kwargs=dict(width=8, bake_batch=True))"


def _state(spec):
    return SpecState(spec, ReportStore())


def test_exporter_warnings_are_recorded_and_survive_a_warm_cache(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path, extra=BAKED_BATCH))
    state = _state(spec)
    cold = export_onnx(spec, state.model, state.example_inputs())
    assert cold.built
    tracer = [w for w in cold.warnings if w["category"] == "TracerWarning"]
    assert len(tracer) == 1 and "Python integer" in tracer[0]["message"]
    assert tracer[0]["where"].startswith(str(tmp_path / "tinymodel.py") + ":")
    assert not [w for w in cold.warnings if "Deprecat" in w["category"]]  # the exporter's API notices: dropped
    state = _state(spec)
    warm = export_onnx(spec, state.model, state.example_inputs())
    assert not warm.built and warm.path == cold.path
    assert warm.warnings == cold.warnings


def test_a_clean_export_has_no_warnings(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path))
    state = _state(spec)
    assert export_onnx(spec, state.model, state.example_inputs()).warnings == []


def test_a_warm_export_writes_nothing(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path))
    state = _state(spec)
    export_onnx(spec, state.model, state.example_inputs())
    before = _tree(tmp_path / "out")
    state = _state(spec)
    assert not export_onnx(spec, state.model, state.example_inputs()).built
    assert _tree(tmp_path / "out") == before


def _tree(root):
    """Every file and directory under ``root`` with its mtime and size: any write shows."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mtime_ns, st.st_size)
    return out


def test_forward_check_runs_before_torch_sees_the_inputs(tmp_path):
    """export_onnx itself checks too (a stage spec's model is a submodule, never built by build_model)."""
    spec = load_spec(write_tiny_spec(tmp_path, extra="onnx_config = dict(input_names=['image', 'mask'])"))
    model = torch.nn.Linear(3, 3)
    with pytest.raises(SpecError, match=r"onnx_config.input_names: \['image', 'mask'\] do not fit Linear.forward"):
        export_onnx(spec, model, {})


# -- onnx_config.simplify / onnx_config.metadata (export/onnx_finish.py) -----------------------------------

_FINISH_IO = ("input_names=['image'], output_names=['logits'], "
              "dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}}")
_AUTOWARE_METADATA = ("metadata=dict(producer_name='autoware-ml', producer_version='v0.7.1', "
                      "domain='3D object detection', model_version=7, doc_string='v3.2.3', "
                      "props=dict(class_names=['car', 'truck', 'bus'], release='2.1'))")


def _finish_spec(directory, **onnx_keys):
    keys = ", ".join(f"{k}={v}" for k, v in onnx_keys.items())
    return load_spec(write_tiny_spec(directory, extra=f"onnx_config = dict({_FINISH_IO}, {keys})"))


def _export(spec):
    state = _state(spec)
    return state, export_onnx(spec, state.model, state.example_inputs())


def _run_graph(path, feed):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)[0]


def test_simplify_gives_fewer_nodes_and_identical_outputs(tmp_path):
    """Without constant folding the exported BatchNorm and Flatten leave a graph onnxslim can shrink."""
    import numpy as np
    import onnx

    from pytest_autoware_deploy.export.cache import read_meta

    plain_state, plain = _export(_finish_spec(tmp_path / "plain", do_constant_folding=False, simplify=False))
    slim_state, slim = _export(_finish_spec(tmp_path / "slim", do_constant_folding=False, simplify=True))
    before, after = (len(onnx.load(str(a.path)).graph.node) for a in (plain, slim))
    assert after < before
    recorded = read_meta(slim.path)["simplify"]
    assert (recorded["nodes_before"], recorded["nodes_after"]) == (before, after)
    assert "simplify" not in read_meta(plain.path)
    feed = {"image": np.concatenate([s["inputs"]["image"] for s in plain_state.samples[:3]])}  # batch 3: dynamic
    np.testing.assert_array_equal(_run_graph(slim.path, feed), _run_graph(plain.path, feed))
    assert slim.published.read_bytes() == slim.path.read_bytes()  # what is published is the simplified graph


def test_simplify_is_part_of_the_export_key(tmp_path):
    spec_a = _finish_spec(tmp_path, simplify=False)
    _, a = _export(spec_a)
    _, b = _export(_finish_spec(tmp_path, simplify=True))
    assert a.key != b.key and b.built
    _, again = _export(_finish_spec(tmp_path, simplify=True))
    assert not again.built and again.key == b.key


def test_metadata_is_written_into_the_graph_for_autoware(tmp_path):
    import onnx
    import onnxruntime as ort

    _, art = _export(_finish_spec(tmp_path, **{"metadata": _AUTOWARE_METADATA.partition("=")[2]}))
    model = onnx.load(str(art.published))
    # what TensorRT's ONNX parser logs when an Autoware node builds its engine
    assert (model.producer_name, model.producer_version, model.domain, model.model_version, model.doc_string) == \
        ("autoware-ml", "v0.7.1", "3D object detection", 7, "v3.2.3")
    meta = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map == {"class_names": '["car", "truck", "bus"]', "release": "2.1"}


def test_metadata_is_part_of_the_export_key(tmp_path):
    _, one = _export(_finish_spec(tmp_path, metadata="dict(model_version=1)"))
    _, two = _export(_finish_spec(tmp_path, metadata="dict(model_version=2)"))
    assert one.key != two.key and two.built
    import onnx

    assert onnx.load(str(two.published)).model_version == 2  # the published file follows the spec, never stale
    _, warm = _export(_finish_spec(tmp_path, metadata="dict(model_version=2)"))
    assert not warm.built


@pytest.mark.parametrize("policy", ["fp16", "int8"])
def test_derived_policy_graphs_keep_the_metadata(tmp_path, policy):
    import onnx

    from pytest_autoware_deploy.export.onnx_finish import check_graph_metadata
    from pytest_autoware_deploy.export.precision import derive

    spec = _finish_spec(tmp_path, metadata=_AUTOWARE_METADATA.partition("=")[2])
    state, art = _export(spec)
    derived = derive(spec, art.path, policy, state.samples)
    assert derived.path != art.path
    assert check_graph_metadata(derived.path, spec.cfg["onnx_config"]) == []
    assert onnx.load(str(derived.path)).producer_name == "autoware-ml"  # ORT's quantizer writes 'onnx.quantize'


@pytest.mark.parametrize("value, key, text", [
    ("dict(model_version='7')", "onnx_config.metadata.model_version", "expected int or None, got str '7'"),
    ("dict(model_version=-1)", "onnx_config.metadata.model_version", "expected a non-negative int"),
    ("dict(props=dict(ids={1, 2}))", "onnx_config.metadata.props.ids", "JSON-serializable"),
    ("dict(domian='x')", "onnx_config.metadata.domian", "did you mean 'domain'?"),
])
def test_bad_metadata_is_one_spec_error_naming_the_key(tmp_path, value, key, text):
    with pytest.raises(SpecError) as info:
        _export(_finish_spec(tmp_path, metadata=value))
    assert f": {key}: " in str(info.value) and text in str(info.value)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_test_export_onnx_fails_when_the_deployed_graph_lacks_the_metadata(pytester, tmp_path):
    """export.mode='none': the given file is what Autoware gets, so it must carry what the spec declares."""
    import onnx

    from ..test_plugin import run

    _, art = _export(_finish_spec(tmp_path / "made", metadata="dict(domain='3D object detection')"))
    bare = onnx.load(str(art.path))
    bare.domain = ""
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    evaluate = ("export = dict(mode='none', work_dir='out')\nruntime_io = dict(onnx_file={f!r})\n"
                "evaluation = dict(evaluator='classification', kwargs=dict(num_classes=3), "
                "models_to_evaluate=['onnx'])\n")
    declared = f"onnx_config = dict({_FINISH_IO}, metadata=dict(domain='3D object detection'))\n"
    for name, onnx_file, outcome in (("lacks", tmp_path / "bare.onnx", "failed"), ("has", art.path, "passed")):
        spec = write_tiny_spec(tmp_path / name, extra=evaluate.format(f=str(onnx_file)) + declared)
        result = run(pytester, f"--deploy-config={spec}", "-k", "test_export_onnx", "--benchmark-disable")
        result.assert_outcomes(**{outcome: 1})
        if outcome == "failed":
            result.stdout.fnmatch_lines(["*lacks the declared onnx_config.metadata:*",
                                         "*domain is '', onnx_config.metadata.domain says '3D object detection'*"])


_json = st.recursive(st.none() | st.booleans() | st.integers(-2**31, 2**31) | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
                     max_leaves=8)


@given(props=st.dictionaries(st.text(min_size=1, max_size=8), _json, max_size=4),
       version=st.integers(0, 2**62), doc=st.text(max_size=20))
def test_written_metadata_reads_back_exactly(props, version, doc):
    """Any JSON-able prop survives the ModelProto round trip: strings as given, the rest as JSON text that
    decodes to the declared value; a graph written from a declaration has no problems against it."""
    import json

    import onnx
    from onnx import helper

    from pytest_autoware_deploy.export.onnx_finish import metadata_problems, metadata_wanted, write_metadata

    ocfg = {"metadata": {"model_version": version, "doc_string": doc, "props": props}}
    model = helper.make_model(helper.make_graph([], "g", [], []))
    model.metadata_props.add(key="kept", value="old")  # a prop nobody declared stays
    wanted = metadata_wanted(ocfg)
    write_metadata(model, wanted)
    again = onnx.load_from_string(model.SerializeToString())
    assert metadata_problems(again, wanted) == []
    have = {p.key: p.value for p in again.metadata_props}
    if "kept" not in props:
        assert have["kept"] == "old"
    for k, v in props.items():
        assert (have[k] if isinstance(v, str) else json.loads(have[k])) == v


class _IgnoresMask(torch.nn.Module):
    def forward(self, image, mask):
        return image * 2


def test_an_input_the_exporter_drops_fails_the_export_naming_it(tmp_path):
    from pytest_autoware_deploy.errors import ArtifactError
    from pytest_autoware_deploy.export.onnx import check_exported_inputs

    path = tmp_path / "m.onnx"
    torch.onnx.export(_IgnoresMask(), (torch.ones(1, 3), torch.ones(1, 3)), str(path), input_names=["image", "mask"],
                      output_names=["out"], dynamo=False)
    with pytest.raises(ArtifactError, match=r"ONNX export of tiny: graph inputs \['image'\] != onnx_config.input_names "
                                            r"\['image', 'mask'\]; dropped by the exporter .*\['mask'\]"):
        check_exported_inputs(path, ["image", "mask"], "tiny")
    check_exported_inputs(path, ["image"], "tiny")
