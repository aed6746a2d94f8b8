"""Spec-local modules: each spec's folder imports its own, even when another folder has the same names.

A user's project ships its model code beside the spec (``mymodel.py``, the ``helpers.py`` it imports).
Python keeps one ``sys.modules`` per process, and pytest puts every spec's folder on ``sys.path``, so two
specs in different folders that each ship a ``mymodel.py`` would share whichever was imported first:
the wrong model exported, evaluated and hashed without a word. Here:

- ``import_spec_module(name, folder)`` imports inside ``folder_modules(folder)``: for the duration,
  ``sys.modules`` shows the folder's own module for every name the folder provides (another folder's
  are hidden, then put back: the first importer keeps its ``sys.modules`` entries) and the folder is
  first on ``sys.path``. The folder's modules are kept in ``_OWN``; one whose file changed since is
  imported again, with all of its folder's (the others may hold objects from it).
- every module imported from a folder gets an ``__import__`` of its own (``FolderImport``), so an
  import that runs later, inside a function (``forward`` importing a helper lazily), reaches the same
  folder's module too, whatever ``sys.modules`` and ``sys.path`` hold by then.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

# folder -> {module name: (module, (mtime_ns, size) of its file when imported)}
_OWN: dict[Path, dict[str, tuple]] = {}
_BUILTINS: dict[Path, dict] = {}  # folder -> the builtins its modules run with (their own __import__)
_LOCK = threading.RLock()


def provided_by(folder: Path, top: str) -> Path | None:
    """The file or package directory through which ``folder`` provides top-level module ``top``, if any.

    Only real modules and regular packages count: a plain sub-folder (``data/``, ``out/``) is at most a
    namespace portion, which Python never prefers over a module found elsewhere on sys.path.
    """
    if not top.isidentifier():
        return None
    if (folder / top / "__init__.py").is_file():
        return folder / top
    if (folder / f"{top}.py").is_file():
        return folder / f"{top}.py"
    return None


@contextmanager
def folder_first_on_path(folder):
    """``folder`` first on sys.path for the duration, even when it is on sys.path already, later."""
    path = str(folder)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        if path in sys.path:
            sys.path.remove(path)  # the first occurrence: the one inserted here


def import_spec_module(module_name: str, folder):
    """``importlib.import_module(module_name)`` as seen from a spec's ``folder`` (see the module doc)."""
    folder = Path(folder).resolve()
    if provided_by(folder, module_name.partition(".")[0]) is None:
        with folder_first_on_path(folder):
            return importlib.import_module(module_name)
    with folder_modules(folder):
        return importlib.import_module(module_name)


def _is_from(module, origin: Path) -> bool:
    """Whether ``module`` was loaded from ``origin`` (a module file, or a package directory)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        file = Path(file).resolve()
    except OSError:
        return False
    return file == origin or origin in file.parents


def _stamp(module):
    try:
        st = os.stat(module.__file__)
        return st.st_mtime_ns, st.st_size
    except (OSError, AttributeError, TypeError):
        return None


@contextmanager
def folder_modules(folder: Path):
    """While importing, ``sys.modules`` shows ``folder``'s own module for every name the folder provides."""
    origins: dict[str, Path | None] = {}

    def origin(name):
        top = name.partition(".")[0]
        if top not in origins:
            origins[top] = provided_by(folder, top)
        return origins[top]

    with _LOCK:
        own = _OWN.setdefault(folder, {})
        if any(_stamp(mod) != stamp for mod, stamp in own.values()):
            for name in own:
                if sys.modules.get(name) is own[name][0]:
                    del sys.modules[name]
            own.clear()
        hidden = {}
        for name, mod in list(sys.modules.items()):
            where = origin(name)
            if where is not None and not _is_from(mod, where):
                hidden[name] = sys.modules.pop(name)
        for name, (mod, _) in own.items():  # what is left of these names in sys.modules is this folder's
            sys.modules.setdefault(name, mod)
        finder = _FolderFinder(folder, origin)
        sys.meta_path.insert(0, finder)
        try:
            with folder_first_on_path(folder):
                yield
        finally:
            sys.meta_path.remove(finder)
            for name, mod in list(sys.modules.items()):
                where = origin(name)
                if where is not None and _is_from(mod, where):
                    if name not in own or own[name][0] is not mod:
                        own[name] = (mod, _stamp(mod))
                    if name in hidden:
                        del sys.modules[name]
            sys.modules.update(hidden)


class _FolderFinder:
    """Finds the folder's own modules (only those) and has them run with the folder's ``__import__``."""

    def __init__(self, folder: Path, origin):
        self.folder, self.origin = folder, origin

    def find_spec(self, fullname, path=None, target=None):
        if self.origin(fullname) is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, [str(self.folder)] if path is None else path)
        if spec is None or spec.loader is None or not (spec.origin or "").endswith(".py"):
            return spec
        spec.loader = _Loader(spec.loader, folder_builtins(self.folder))
        return spec


class _Loader:
    """The path finder's loader, but the module's globals get the folder's builtins before its code runs
    (functions keep the builtins of the globals they were created in)."""

    def __init__(self, inner, builtins_dict):
        self.inner, self.builtins = inner, builtins_dict

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        module.__dict__["__builtins__"] = self.builtins
        self.inner.exec_module(module)

    def __getattr__(self, name):  # get_source, get_filename, is_package, ...
        return getattr(self.inner, name)


def folder_builtins(folder: Path) -> dict:
    if folder not in _BUILTINS:
        _BUILTINS[folder] = dict(vars(builtins), __import__=FolderImport(folder))
    return _BUILTINS[folder]


class FolderImport:
    """``__import__`` for modules of one spec folder: a name the folder provides is the folder's module.

    The common cases cost a dict look-up: the folder owns the name in sys.modules, or the module was
    imported from this folder before (``_OWN``); anything else imports inside ``folder_modules``.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._provides: dict[str, bool] = {}
        self._mine: dict[int, tuple] = {}  # id(module) -> (module, from this folder?): kept alive, ids stay unique

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            package = (globals or {}).get("__package__") or ""
            try:
                absolute = importlib.util.resolve_name("." * level + name, package)
            except (ImportError, ValueError):
                return builtins.__import__(name, globals, locals, fromlist, level)
        else:
            absolute = name
        if not self._local(absolute.partition(".")[0]):
            return builtins.__import__(name, globals, locals, fromlist, level)
        known = self._known(absolute, fromlist, relative=bool(level))
        if known is not None:
            return known
        with folder_modules(self.folder):
            return builtins.__import__(name, globals, locals, fromlist, level)

    def _local(self, top: str) -> bool:
        if top not in self._provides:
            self._provides[top] = provided_by(self.folder, top) is not None
        return self._provides[top]

    def _known(self, name, fromlist, relative):
        """What ``__import__`` returns, when this folder's modules involved are imported already; else None."""
        module = self._own_module(name)
        if module is None:
            return None
        if fromlist:
            return module if all(item == "*" or hasattr(module, item) for item in fromlist) else None
        return module if relative else self._own_module(name.partition(".")[0])  # import a.b -> a

    def _own_module(self, name):
        """This folder's module ``name``: sys.modules' when it is this folder's, else the one kept in _OWN."""
        current = sys.modules.get(name)
        if current is not None:
            mine = self._mine.get(id(current))
            if mine is None:
                mine = self._mine[id(current)] = (current, _is_from(current, self.folder))
            if mine[1]:
                return current
        entry = _OWN.get(self.folder, {}).get(name)
        return entry[0] if entry else None
