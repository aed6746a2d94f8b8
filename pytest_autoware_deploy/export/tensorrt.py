"""ONNX -> TensorRT engine. Not implemented in this version: TensorRT cannot run on any machine
this project is developed on, so the exporter is tracked separately (TRT 10 and 11 APIs, tested
with a fake module). Until then a spec asking for an engine gets a skipped test that says why.
"""

from __future__ import annotations

from ..errors import BackendUnavailable


def build_engine(spec, onnx_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise BackendUnavailable(f"TensorRT is not installed here (no 'tensorrt' module): no engine was built "
                                 f"from {onnx_path} for {spec.name}") from None
    raise BackendUnavailable("the TensorRT exporter is not implemented in this version of pytest-autoware-deploy; "
                             f"{onnx_path} was exported and verified with ONNX Runtime only")
