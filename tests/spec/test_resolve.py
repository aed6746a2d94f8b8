from __future__ import annotations

import sys

import pytest

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.export.pytorch_model import build_model
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.resolve import resolve_callable

from ..conftest import TINY_MODULE, write_tiny_spec


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


@pytest.fixture
def restore_modules():
    """These tests start without the tiny project's modules imported and leave sys.modules as they found it."""
    saved = {name: sys.modules.pop(name) for name in ("tinymodel", "helper", "lazyhelper") if name in sys.modules}
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.modules.update(saved)


def _project(root, who):
    """A tiny project whose module ``tinymodel`` says who it is, through a sibling module of a shared name."""
    spec = write_tiny_spec(root / who)
    (root / who / "helper.py").write_text(f"WHO = {who!r}\n")
    with open(root / who / "tinymodel.py", "a") as f:
        f.write("\nfrom helper import WHO\n\n\ndef who():\n    return WHO\n")
    return load_spec(spec)


def test_same_module_name_in_two_spec_folders_resolves_each_folders_own(tmp_path, restore_modules):
    a, b = _project(tmp_path, "a"), _project(tmp_path, "b")
    for spec, who in ((a, "a"), (b, "b"), (a, "a"), (b, "b")):
        fn = resolve_callable("tinymodel:who", spec, "model.builder")
        assert fn() == who  # its own sibling 'helper' too
        assert fn.__code__.co_filename == str(tmp_path / who / "tinymodel.py")
    assert sys.modules["tinymodel"].__file__ == str(tmp_path / "a" / "tinymodel.py")  # the first owner keeps it
    assert sys.modules["helper"].WHO == "a"


def test_each_folder_builds_its_own_model(tmp_path, restore_modules):
    a = _project(tmp_path, "a")
    b = load_spec(write_tiny_spec(tmp_path / "b"))
    (tmp_path / "b" / "tinymodel.py").write_text(
        TINY_MODULE.replace("return Tiny(**kwargs).eval()", "return Tiny(classes=5, **kwargs).eval()"))
    assert build_model(a).head.out_features == 3
    assert build_model(b).head.out_features == 5
    assert build_model(a).head.out_features == 3


def test_an_edited_module_of_a_displaced_folder_is_imported_again(tmp_path, restore_modules):
    a, b = _project(tmp_path, "a"), _project(tmp_path, "b")
    resolve_callable("tinymodel:who", a, "model.builder")
    assert resolve_callable("tinymodel:who", b, "model.builder")() == "b"
    (tmp_path / "b" / "helper.py").write_text("WHO = 'b, edited'\n")
    assert resolve_callable("tinymodel:who", b, "model.builder")() == "b, edited"


def test_modules_outside_the_spec_folder_are_imported_as_usual(spec):
    fn = resolve_callable("pytest_autoware_deploy.spec.resolve:resolve_callable", spec, "model.builder")
    assert fn is resolve_callable


def test_a_spec_folder_already_on_sys_path_still_comes_first(tmp_path, restore_modules, monkeypatch):
    """pytest (or the user) may have put several spec folders on sys.path, another folder before this one."""
    a, b = _project(tmp_path, "a"), _project(tmp_path, "b")
    monkeypatch.setattr(sys, "path", [str(b.dir), str(a.dir)] + sys.path)
    assert resolve_callable("tinymodel:who", a, "model.builder")() == "a"
    assert resolve_callable("tinymodel:who", b, "model.builder")() == "b"
    assert sys.path[:2] == [str(b.dir), str(a.dir)]


def _lazy_project(root, who):
    """As _project, but the sibling is imported when the function runs (inside it), not with the module."""
    spec = write_tiny_spec(root / who)
    (root / who / "lazyhelper.py").write_text(f"WHO = {who!r}\n")
    with open(root / who / "tinymodel.py", "a") as f:
        f.write("\n\ndef who_later():\n    from lazyhelper import WHO\n\n    return WHO\n")
    return load_spec(spec)


def test_a_sibling_imported_inside_a_function_is_the_folders_own(tmp_path, restore_modules, monkeypatch):
    """forward importing a helper lazily runs after resolution, when sys.path may list the other folder first."""
    a, b = _lazy_project(tmp_path, "a"), _lazy_project(tmp_path, "b")
    fa = resolve_callable("tinymodel:who_later", a, "model.builder")
    fb = resolve_callable("tinymodel:who_later", b, "model.builder")
    monkeypatch.setattr(sys, "path", [str(b.dir), str(a.dir)] + sys.path)  # as pytest leaves it: b first
    assert [fa(), fb(), fa(), fb()] == ["a", "b", "a", "b"]
    assert sys.modules["lazyhelper"].__file__ == str(tmp_path / "a" / "lazyhelper.py")  # a imported it first
