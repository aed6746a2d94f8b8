"""The backends this package registers (pyproject.toml, group ``pytest_autoware_deploy.backends``).

Each is a ``registry.Backend`` whose functions import their runtime only when called, so listing the
backends (validating a spec) imports neither torch nor onnxruntime nor TensorRT. They reach the spec's
model, policy graphs and artifacts through the state they are given (session.SpecState), which caches
them; nothing here caches.
"""

from __future__ import annotations

from ..policies import tf32_allowed
from .registry import Backend


def _cuda(device: str) -> bool:
    return str(device).startswith("cuda")


# -- pytorch: the reference --------------------------------------------------------------------------------
def _pytorch_runner(state, backend_id, device):
    from .inputs import spec_input_metadata
    from .pytorch import PyTorchRunner

    spec = state.spec
    return PyTorchRunner(state.model, spec.input_names, spec.output_names, device,
                         input_metadata=spec_input_metadata(spec))


PYTORCH = Backend("pytorch", _pytorch_runner, policies=(), needs_model=True,
                  device_problem=lambda device: None,  # any torch device (meta too); torch says when it runs
                  doc="the PyTorch model itself (the reference)")


# -- onnx: ONNX Runtime on the policy's graph ------------------------------------------------------------------
def _onnx_runner(state, backend_id, device):
    from ..distributed import cpu_threads_per_worker
    from .onnxruntime import OnnxRuntimeRunner

    graph = state.policy_onnx(backend_id.policy_name).path
    return OnnxRuntimeRunner(graph, device, tf32=tf32_allowed(backend_id.policy_name),
                             intra_op_threads=cpu_threads_per_worker() or 0)


ONNXRUNTIME = Backend("onnx", _onnx_runner, aliases=("onnxruntime",),
                      int8_target=lambda device: "onnxruntime-cuda" if _cuda(device) else "onnxruntime-cpu",
                      doc="ONNX Runtime (CPU or CUDA execution provider) on the policy's ONNX graph")


# -- tensorrt (10, 11) and tensorrt_rtx: an engine built from the policy's graph ---------------------------------
def _engine_builder(module):
    def artifact(state, backend_id, device):
        from ..export.tensorrt import build_engine

        spec, policy = state.spec, backend_id.policy_name
        graph = state.policy_onnx(policy).path
        if module == "tensorrt_rtx":  # compiled ahead of time on the CPU for a set of compute capabilities
            ccs = spec.cfg["backend_config"]["common_config"].get("compute_capabilities") or None
            return build_engine(spec, graph, policy=policy, rebuild=state.rebuild, module=module,
                                compute_capabilities=ccs)
        return build_engine(spec, graph, policy=policy, rebuild=state.rebuild, module=module, device=device)

    return artifact


def _engine_runner(module):
    def runner(state, backend_id, device):
        from .tensorrt import TensorRTRunner

        engine = state.artifact(backend_id)
        return TensorRTRunner(engine.path, device, module=module)

    return runner


def _trt_device(device: str) -> str:
    """TensorRT runs on CUDA: a spec on the CPU runs its engines on the first GPU."""
    return device if _cuda(device) else "cuda:0"


def _trt_device_problem(device: str) -> str | None:
    text = str(device)
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return None
    return f"TensorRT engines run on CUDA devices ('cuda' or 'cuda:N'), got {device!r}"


TENSORRT = Backend("tensorrt", _engine_runner("tensorrt"), artifact=_engine_builder("tensorrt"),
                   run_device=_trt_device, device_problem=_trt_device_problem, artifact_kind="engine",
                   artifact_needs_gpu=True, int8_target=lambda device: "tensorrt",
                   doc="TensorRT 10/11: an engine built on (and for) the GPU it runs on")

TENSORRT_RTX = Backend("tensorrt_rtx", _engine_runner("tensorrt_rtx"), artifact=_engine_builder("tensorrt_rtx"),
                       aliases=("tensorrt-rtx",), run_device=_trt_device, device_problem=_trt_device_problem,
                       artifact_kind="engine", int8_target=lambda device: "tensorrt",
                       doc="TensorRT-RTX: an engine compiled ahead of time on the CPU for a set of compute "
                           "capabilities, JIT-compiled on the RTX GPU it runs on")
