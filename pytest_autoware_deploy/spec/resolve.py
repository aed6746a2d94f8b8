"""Resolve ``"module.path:attr"`` strings to Python objects, with errors that name the spec key.

Modules are imported as seen from the spec's folder (``spec/local_modules.py``): the folder is searched
first, and a module it ships is its own even when another spec's folder ships one of the same name.
"""

from __future__ import annotations

from ..errors import SpecError
from .local_modules import import_spec_module


def resolve_callable(ref: str, spec, key: str):
    """Import ``ref`` ("pkg.mod:attr" or "pkg.mod:Class.attr") relative to the spec's directory."""
    if not isinstance(ref, str) or ":" not in ref:
        raise SpecError(spec.file, key, f"expected 'module.path:attr', got {ref!r}")
    module_name, _, attr_path = ref.partition(":")
    try:
        obj = import_spec_module(module_name, spec.dir)
    except ModuleNotFoundError as exc:
        raise SpecError(spec.file, key, f"cannot import module '{module_name}' ({exc}); searched the "
                        f"spec directory {spec.dir} and sys.path") from None
    except Exception as exc:  # the user's module raised while importing
        raise SpecError(spec.file, key, f"importing '{module_name}' failed: "
                        f"{type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(spec.file, key, f"module '{module_name}' has no attribute '{attr_path}'") from None
    if not callable(obj):
        raise SpecError(spec.file, key, f"'{ref}' is not callable")
    return obj


def call_from_spec(ref: str, kwargs: dict, spec, key: str, kwargs_key: str):
    """``resolve_callable(ref)(**kwargs)``: a TypeError from the call (wrong kwargs) is one SpecError
    naming ``kwargs_key``; builders, hosts and evaluators named in a spec all go through here."""
    fn = resolve_callable(ref, spec, key)
    try:
        return fn(**kwargs)
    except TypeError as exc:
        raise SpecError(spec.file, kwargs_key, f"{ref} rejected the kwargs: {exc}") from None
