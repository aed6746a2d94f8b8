"""ONNX Runtime runner: CPU or CUDA execution provider; its input metadata is the graph's (names, element
types, dims with ``dim_param`` names for dynamic axes), which ``Runner`` checks every feed against."""

from __future__ import annotations

import numpy as np

from ..custom_ops import session_source
from ..errors import ArtifactError, BackendUnavailable
from .base import Runner
from .inputs import TensorMeta

# ONNX Runtime's type strings -> numpy dtypes; a type numpy lacks (bfloat16, string) is left to the runtime
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
              "tensor(uint64)": "uint64", "tensor(bool)": "bool"}


def providers_for(device: str, tf32=None):
    if device.startswith("cuda"):
        options = {"device_id": int(device.partition(":")[2] or 0)}
        if tf32 is not None:
            options["use_tf32"] = int(tf32)
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    def __init__(self, onnx_path, device="cpu", intra_op_threads=0, tf32=None):
        super().__init__()
        self.path = str(onnx_path)
        self.device = device
        self.tf32 = tf32
        self.threads = intra_op_threads
        self.name = f"onnx@{device}"
        self.session = None

    def _activate(self):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed (pip install '.[cpu]' or '.[gpu]')") from None
        providers = providers_for(self.device, self.tf32)
        if self.device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable(f"onnx on {self.device}: this onnxruntime has no CUDAExecutionProvider "
                                     f"(available: {ort.get_available_providers()}); install onnxruntime-gpu")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        if self.threads:  # a share of the cores (xdist): spinning threads would steal the others'
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        source = session_source(self.path, opts)  # custom ops: their reference kernels (custom_ops.py)
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=providers)
        except Exception as exc:
            raise ArtifactError(f"ONNX Runtime cannot load {self.path}: {str(exc).splitlines()[0]}") from None
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _input_metadata(self):
        return [TensorMeta.of(i.name, ORT_DTYPES.get(i.type), i.shape) for i in self.inputs.values()]

    def describe(self):
        return f"{self.name} ({self.path})"

    def _infer(self, feed):
        outs = self.session.run(self.output_names, {n: feed[n] for n in self.inputs})
        return dict(zip(self.output_names, outs))

    def _prepare(self, feed):
        """On CUDA: IOBinding with inputs and outputs resident on the device, so the timed call is
        the session's compute only (host copies are timed separately, end to end). On CPU: run()."""
        if not self.device.startswith("cuda"):
            run, names, bound = self.session.run, self.output_names, {n: feed[n] for n in self.inputs}
            return lambda: run(names, bound)
        return self._bound(feed)["compute"]

    def _phases(self, feed):
        return self._bound(feed) if self.device.startswith("cuda") else None

    def _bound(self, feed) -> dict:
        """Device buffers bound once; callables for host->device, compute and device->host."""
        import onnxruntime as ort

        idx = int(self.device.partition(":")[2] or 0)
        first = self._infer(feed)  # output shapes and dtypes for the device buffers
        binding = self.session.io_binding()
        host_in = {n: np.ascontiguousarray(feed[n]) for n in self.inputs}
        dev_in, dev_out = [], []
        for name in self.inputs:
            value = ort.OrtValue.ortvalue_from_numpy(host_in[name], "cuda", idx)
            binding.bind_ortvalue_input(name, value)
            dev_in.append((value, host_in[name]))
        for name in self.output_names:
            value = ort.OrtValue.ortvalue_from_shape_and_type(first[name].shape, first[name].dtype, "cuda", idx)
            binding.bind_ortvalue_output(name, value)
            dev_out.append(value)
        run = self.session.run_with_iobinding

        # the closures hold the device buffers as long as the callables live
        def h2d():
            for value, host in dev_in:
                value.update_inplace(host)

        def compute():
            run(binding)

        def d2h():
            return [value.numpy() for value in dev_out]

        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def _deactivate(self):
        self.session = None
