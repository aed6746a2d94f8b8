from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.export.cache import ArtifactCache, atomic_path, content_key, read_meta
from pytest_autoware_deploy.export.onnx import export_key
from pytest_autoware_deploy.export.sources import export_sources
from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.session import SpecState
from pytest_autoware_deploy.spec.load import load_spec

from ..projects import set_scale, write_helper_spec


@given(d=st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.text(max_size=4)), max_size=5))
def test_content_key_ignores_key_order(d):
    assert content_key(d) == content_key(dict(reversed(list(d.items()))))


def test_content_key_changes_with_any_value():
    assert content_key({"a": 1, "b": [1, 2]}) != content_key({"a": 1, "b": [1, 3]})


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("export crashed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_cache_builds_once_and_rebuilds_on_request(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def build(tmp):
        calls.append(tmp)
        tmp.write_text(f"build {len(calls)}")

    p1, built1 = cache.get_or_build("onnx", "k" * 40, "m.onnx", build, meta={})
    p2, built2 = cache.get_or_build("onnx", "k" * 40, "m.onnx", build, meta={})
    assert (built1, built2) == (True, False) and p1 == p2 and p1.read_text() == "build 1"
    p3, built3 = cache.get_or_build("onnx", "k" * 40, "m.onnx", build, meta={}, rebuild=True)
    assert built3 and p3.read_text() == "build 2"


def test_entry_without_meta_is_incomplete_and_rebuilt(tmp_path):
    cache = ArtifactCache(tmp_path)
    entry = cache.entry("onnx", "x" * 40)
    entry.mkdir(parents=True)
    (entry / "m.onnx").write_text("torn")
    path, built = cache.get_or_build("onnx", "x" * 40, "m.onnx", lambda t: t.write_text("ok"), meta={})
    assert built and path.read_text() == "ok"


def _stat_tree(root):
    """Every path under ``root`` with its mtime and size: any write (a rewritten lock file too) shows."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(root.rglob("*"))}


def _record_opens_for_writing(monkeypatch) -> list:
    """Every open of a file for writing from now on (os.open flags, open() modes): what a read-only cache
    (a shared or mounted one) would refuse, even where rewriting an empty lock file leaves its mtime alone."""
    import builtins
    import io
    import os

    opened = []
    real_os_open, real_open = os.open, io.open

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            opened.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    def io_open(file, mode="r", *args, **kwargs):
        if set(mode) & set("wax+"):
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)
    return opened


def test_a_warm_hit_reads_only(tmp_path, monkeypatch):
    cache = ArtifactCache(tmp_path)
    cache.get_or_build("onnx", "w" * 40, "m.onnx", lambda t: t.write_text("built"), meta={"warnings": ["w"]})
    before = _stat_tree(tmp_path)

    def must_not_build(tmp):
        raise AssertionError("a complete entry was built again")

    opened = _record_opens_for_writing(monkeypatch)
    path, built = cache.get_or_build("onnx", "w" * 40, "m.onnx", must_not_build, meta={})
    assert opened == []  # no lock taken: FileLock opens .lock read-write and truncates it
    monkeypatch.undo()
    assert not built and path.read_text() == "built"
    assert _stat_tree(tmp_path) == before
    assert read_meta(path)["warnings"] == ["w"]  # what the build recorded, read back


def test_build_may_record_into_meta(tmp_path):
    meta = {"spec": "s"}

    def build(tmp):
        tmp.write_text("x")
        meta["seen"] = 3

    path, _ = ArtifactCache(tmp_path).get_or_build("onnx", "m" * 40, "m.onnx", build, meta=meta)
    assert read_meta(path) == {"key": "m" * 40, "spec": "s", "seen": 3}


def _key(spec_file):
    spec = load_spec(spec_file)
    state = SpecState(spec, ReportStore())
    return export_key(spec, state.model, state.example_inputs())


def test_export_key_covers_helper_modules_the_model_imports(tmp_path):
    """forward imports mathhelpers lazily, which imports constants: editing either gives a new key."""
    spec = write_helper_spec(tmp_path / "p", scale="2.0")
    first = _key(spec)
    assert _key(spec) == first
    set_scale(tmp_path / "p", "3.25")
    second = _key(spec)
    assert second != first
    helpers = tmp_path / "p" / "mathhelpers.py"
    helpers.write_text(helpers.read_text() + "\n# a comment is a change too\n")
    assert _key(spec) not in (first, second)


def test_export_sources_follow_project_code_only(tmp_path):
    spec = load_spec(write_helper_spec(tmp_path / "p"))
    state = SpecState(spec, ReportStore())
    files = {Path(f).name for f in export_sources(spec, state.model)}
    assert files == {"tinymodel.py", "mathhelpers.py", "constants.py"}  # torch, numpy: versions, not files
