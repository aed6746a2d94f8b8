from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.export.cache import ArtifactCache, atomic_path, content_key


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
