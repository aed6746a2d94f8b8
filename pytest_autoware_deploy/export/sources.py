"""The source files an export depends on, for its cache key: the model's classes, its builder, and
every project module they import, transitively.

The math of a model often lives outside the class's file (a helper with constants, a shared layers
module). Hashing only the class's file served a stale ONNX after an edit there, and verification
then failed as if the export were wrong. Imports are read from the source (``ast``) instead of
``sys.modules``, so a helper that ``forward`` imports lazily, inside the function, counts as well,
and a spec-local module resolves to the spec's own folder (spec/resolve.py). The standard library
and site-packages are not followed (torch's and onnx's versions are in the key already);
``importlib.import_module`` with a computed name is not seen.
"""

from __future__ import annotations

import ast
import importlib.machinery
import inspect
import os
import site
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

from ..spec.local_modules import provided_by
from .cache import file_digest


def source_digests(roots, spec_dir) -> dict[str, str]:
    """sha256 of each root file and of every project source file reachable from them by imports.

    ``roots`` are objects (classes, functions, modules) or paths; ``spec_dir`` is searched first for
    absolute imports, as the spec's own modules are imported from there.
    """
    spec_dir = Path(spec_dir).resolve()
    seen: set[Path] = set()
    todo = []
    for root in roots:
        file = root if isinstance(root, Path) else object_file(root)
        if file is not None and file.suffix == ".py" and file.is_file() and not _under_torch(file):
            todo.append(file)
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        if not is_project_file(file):
            continue  # a root from site-packages is hashed, not followed
        for dep in imported_files(file, spec_dir) + enclosing_packages(file):
            if dep not in seen and is_project_file(dep):
                todo.append(dep)
    return {str(f): file_digest(f) for f in sorted(seen)}


def object_file(obj) -> Path | None:
    """The file defining a class, function or module, from its code objects where possible: for a class,
    ``inspect`` looks its module up in sys.modules, which may hold another folder's module of that name."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    code = getattr(obj, "__code__", None)
    if code is None and inspect.isclass(obj):
        for name in ("forward", "__init__", *vars(obj)):
            member = vars(obj).get(name)
            member = getattr(member, "__func__", member)  # staticmethod / classmethod
            code = getattr(member, "__code__", None)
            if code is not None:
                break
    try:
        file = code.co_filename if code is not None else inspect.getsourcefile(obj)
    except TypeError:  # a builtin
        return None
    if not file or file.startswith("<"):
        return None
    try:
        return Path(file).resolve()
    except OSError:
        return None


def imported_files(file: Path, spec_dir: Path) -> list[Path]:
    """Files of the modules that ``file``'s import statements name (anywhere in it, functions included):
    for ``import a.b`` both ``a/__init__.py`` and ``a/b.py`` (both run), for ``from pkg import x`` also
    ``pkg/x.py`` when ``x`` is a submodule."""
    out = []
    for level, module, names in _import_statements(file, *_stamp(file)):
        parts = module.split(".") if module else []
        if level:
            base = file.parent
            for _ in range(level - 1):
                base = base.parent
        else:
            base = _top_location(parts[0], spec_dir)
            parts = parts[1:]
            if base is None:
                continue
        files, package = _walk(base, parts)
        out += files
        if package is not None:
            for name in names:
                out += _walk(package, [name])[0][-1:]
    return out


def _walk(base: Path, parts) -> tuple[list[Path], Path | None]:
    """Files run when importing submodule ``parts`` of ``base`` (a package directory or a module file),
    and the directory of the final package (None when it is a module or not found)."""
    if base.is_file():
        return ([base], None) if not parts else ([], None)
    files = []
    for i, part in enumerate(parts + [None]):
        init = base / "__init__.py"
        if init.is_file():
            files.append(init)
        if part is None:
            return files, base
        if (base / part / "__init__.py").is_file():
            base = base / part
        elif (base / f"{part}.py").is_file():
            return files + [base / f"{part}.py"] if i == len(parts) - 1 else files, None
        elif (base / part).is_dir():  # a namespace package
            base = base / part
        else:
            return files, None
    return files, None


def enclosing_packages(file: Path) -> list[Path]:
    """The ``__init__.py`` of each package around ``file``: importing the module runs them all first."""
    out = []
    folder = file.parent
    while (folder / "__init__.py").is_file():
        out.append(folder / "__init__.py")
        folder = folder.parent
    return out


def _stamp(file: Path):
    st = os.stat(file)
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=4096)
def _import_statements(file: Path, mtime_ns: int, size: int) -> tuple:
    """(level, module, names) of every import in ``file``; cached per file version."""
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (OSError, SyntaxError, ValueError):
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", tuple(a.name for a in node.names)))
    return tuple(found)


def _top_location(top: str, spec_dir: Path) -> Path | None:
    """Where top-level module ``top`` comes from: the spec's folder first, then what is imported, then
    sys.path. A package is its directory (walked by ``_walk``), a module its file."""
    local = provided_by(spec_dir, top)
    if local is not None:
        return local
    module = sys.modules.get(top)
    if module is not None:
        path = getattr(module, "__path__", None)
        if path:
            return Path(next(iter(path))).resolve()
        file = getattr(module, "__file__", None)
        return Path(file).resolve() if file else None
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin and spec.has_location else None


@lru_cache(maxsize=1)
def _environment_dirs() -> tuple[Path, ...]:
    """The standard library's and every site-packages' directories: installed code, not the project's."""
    dirs = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs |= set(getattr(site, "getsitepackages", lambda: [])())
    dirs.add(getattr(site, "getusersitepackages", lambda: None)())
    return tuple(Path(d).resolve() for d in dirs if d)


def is_project_file(file: Path) -> bool:
    """A ``.py`` file of the user's project (spec folder, a package on sys.path, an editable install)."""
    if file.suffix != ".py" or {"site-packages", "dist-packages"} & set(file.parts):
        return False
    return not any(d == file or d in file.parents for d in _environment_dirs())


def _under_torch(file: Path) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and Path(torch.__file__).resolve().parent in file.parents


def export_sources(spec, model) -> dict[str, str]:
    """``source_digests`` of an export: the classes of every submodule of ``model`` and the spec's builder."""
    from ..spec.resolve import resolve_callable

    roots = {type(m) for m in model.modules()}
    builder = spec.cfg["model"].get("builder")
    if builder:
        roots.add(resolve_callable(builder, spec, "model.builder"))
    return source_digests(sorted(roots, key=repr), spec.dir)


def callable_sources(ref: str, spec, key: str) -> dict[str, str]:
    """``source_digests`` of a callable the spec names (a pipeline's host code): resolved from the spec's folder,
    not looked up in sys.modules, which may hold another folder's module of that name."""
    from ..spec.resolve import resolve_callable

    return source_digests([resolve_callable(ref, spec, key)], spec.dir)
