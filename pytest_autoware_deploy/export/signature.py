"""``onnx_config.input_names`` against the model's ``forward``: one clear error before torch's.

``torch.onnx.export`` and the PyTorch runner pass the inputs by position, in ``input_names`` order.
A name too many or too few otherwise ends in a TypeError deep inside torch, repeated in every test
that runs the model; a name that is one of forward's parameters but sits at another position feeds
the wrong tensor silently. Graph names are otherwise free (``forward(self, x)`` exported with the
input ``'image'`` is fine), except a name that is nearly its parameter's while other names are
exactly theirs: a misspelling.
"""

from __future__ import annotations

import difflib
import inspect

from ..errors import SpecError

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def input_names_key(spec) -> str:
    """The spec key that holds ``spec.input_names``: a pipeline stage's own entry, or onnx_config's."""
    stage = spec.cfg.get("stage")
    return f"pipeline.stages[{stage['name']!r}].input_names" if stage else "onnx_config.input_names"


def forward_input_problems(forward, names: list[str]) -> list[str]:
    """Why calling ``forward(*tensors named names)`` cannot work or wires tensors wrongly ([] if fine)."""
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):  # a builtin or scripted forward: nothing to compare against
        return []
    params = list(sig.parameters.values())
    positional = [p.name for p in params if p.kind in _POSITIONAL]
    required = [p.name for p in params if p.kind in _POSITIONAL and p.default is p.empty]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    varkw = any(p.kind is p.VAR_KEYWORD for p in params)
    kw_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    problems = []
    if len(names) > len(positional) and not varargs:
        if not positional and varkw:
            problems.append("forward takes its inputs by keyword only (**kwargs), but the export and the PyTorch "
                            "runner pass them by position: give forward one parameter per input")
        else:
            problems.append(f"{len(names)} input(s) for {len(positional)} positional parameter(s): "
                            f"{names[len(positional):]} too many")
    if len(names) < len(required):
        problems.append(f"{len(names)} input(s) for {len(required)} required parameter(s): "
                        f"{required[len(names):]} would get no input")
    if kw_only:
        problems.append(f"keyword-only parameter(s) {kw_only} without a default never get an input "
                        "(inputs are passed by position)")
    for i, name in enumerate(names):
        if name in positional and positional.index(name) != i:
            problems.append(f"'{name}' is input {i + 1} but forward's parameter {positional.index(name) + 1} "
                            "(inputs are passed by position, in input_names order)")
    if any(i < len(positional) and n == positional[i] for i, n in enumerate(names)):  # names follow forward's
        for i, name in enumerate(names[:len(positional)]):
            if name not in positional and difflib.get_close_matches(name, [positional[i]], n=1, cutoff=0.75):
                problems.append(f"'{name}' looks like a misspelling of forward's parameter '{positional[i]}'")
    return problems


def check_forward_inputs(model, spec):
    """One SpecError naming the key, the names given and the signature found, when they do not fit.

    A pipeline's own inputs feed its host code, not a forward: each stage's submodule is checked
    against the stage's ``input_names`` instead (before the host first calls it).
    """
    import operator

    stages = (spec.cfg.get("pipeline") or {}).get("stages") or []
    for i, stage in enumerate(stages):
        try:
            module = operator.attrgetter(stage["module"])(model)
        except AttributeError:
            continue  # the stage's tests name the missing submodule
        _check(module, list(stage["input_names"]), spec, f"pipeline.stages[{i}].input_names")
    if not stages:
        _check(model, list(spec.input_names), spec, input_names_key(spec))


def _check(module, names, spec, key):
    problems = forward_input_problems(module.forward, names)
    if problems:
        try:
            found = f"{type(module).__name__}.forward{inspect.signature(module.forward)}"
        except (TypeError, ValueError):
            found = f"{type(module).__name__}.forward"
        raise SpecError(spec.file, key, f"{names} do not fit {found}: " + "; ".join(problems))
