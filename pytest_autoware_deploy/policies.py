"""What each precision policy means, in one place: its name, verification tolerances, accuracy-drop
allowance, what it becomes where it runs (``auto`` on CUDA is TF32) and whether TF32 math is allowed.

Why a module of its own at the bottom of the import graph: the spec layer validates policy names,
export/precision.py derives the policy's graph, the backends build engines and sessions under it and
the suite checks results against its tolerances. Each of them asks here instead of keeping a table.
The graph transforms themselves stay in export/precision.py.
"""

from __future__ import annotations

POLICIES = ("auto", "fp16", "fp32_tf32", "int8", "strongly_typed")
GRAPH_UNCHANGED = ("auto", "fp32_tf32", "strongly_typed")  # these run the exported graph as is

# Default verification tolerances and accuracy-drop allowances per policy (spec values win).
DEFAULT_TOLERANCES = {
    "fp32_tf32": {"atol": 5e-3, "rtol": 5e-3},
    "fp16": {"atol": 2e-2, "rtol": 2e-2, "min_cosine": 0.999},
    "int8": {"atol": 0.75, "rtol": 0.5, "min_cosine": 0.98},
}
DEFAULT_MAX_DROP = {"fp16": 0.01, "int8": 0.03}


def effective_policy(policy: str, device: str | None) -> str:
    """What a policy means where it runs: 'auto' lets the backend decide, and on CUDA both ONNX Runtime's CUDA
    EP and TensorRT decide TF32 (on the H100, 2026-11-25, CenterPoint's pillar encoder differed by 6e-3 from
    the strict-fp32 PyTorch reference). Tolerances and stage checks follow the effective policy."""
    return "fp32_tf32" if policy == "auto" and str(device or "").startswith("cuda") else policy


def tf32_allowed(policy: str) -> bool | None:
    """TF32 on CUDA: allowed by 'fp32_tf32', forbidden by 'strongly_typed', the backend's default otherwise
    (None). ONNX Runtime's CUDA EP and the TensorRT builders read this, not a table of their own."""
    return {"fp32_tf32": True, "strongly_typed": False}.get(policy)


def tolerance_for(spec, policy: str, device: str | None = None) -> dict:
    base = {k: spec.cfg["verification"][k] for k in ("atol", "rtol", "min_cosine")}
    effective = effective_policy(policy, device)
    own = spec.cfg["precision"]["tolerances"]
    if effective != policy:  # 'auto' running as TF32: TF32's tolerances as a floor under the spec's own
        base.update({k: max(base[k], v) for k, v in DEFAULT_TOLERANCES[effective].items() if k in ("atol", "rtol")})
        base.update(own.get(policy, {}))
        base.update(own.get(effective, {}))  # the spec's word on TF32 (e.g. measured on a GPU) is the last
        return base
    base.update(DEFAULT_TOLERANCES.get(policy, {}))
    base.update(own.get(policy, {}))
    return base


def max_drop_for(spec, policy: str):
    explicit = spec.cfg["precision"]["max_drop"]
    if policy in explicit:
        return explicit[policy]
    general = spec.cfg["evaluation"]["thresholds"]["max_drop"]
    if general is None:
        return None
    return max(general, DEFAULT_MAX_DROP.get(policy, 0.0))
