"""ONNX Runtime runner: CPU or CUDA execution provider; its input metadata is the graph's (names, element
types, dims with ``dim_param`` names for dynamic axes), which ``Runner`` checks every feed against."""

from __future__ import annotations

import numpy as np

from ..custom_ops import session_source
from ..errors import ArtifactError, BackendUnavailable, InferenceError
from .base import Runner
from .inputs import TensorMeta, numpy_dtype_of

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


def known_runtime_limit(message: str, device: str, feed: dict) -> str:
    """An explanation for an ONNX Runtime failure that is a known limit of its execution provider rather than a
    defect of the graph, or ''. cuDNN's batch-norm kernel (the CUDA EP's BatchNormalization) refuses large batch
    axes: CenterPoint's pillar encoder (PFN BatchNorm1d over voxels) fails at AWML's 96000-voxel profile maximum
    on an H100 while 20001 voxels pass. TensorRT folds that node into the MatMul before it, so the engine a
    deployment runs is not affected; the ONNX Runtime verification is."""
    if device.startswith("cuda") and "BatchNormalization" in message and "CUDNN_STATUS_NOT_SUPPORTED" in message:
        node = message.split("Name:", 1)[1].split()[0].strip("'\"") if "Name:" in message else "a BatchNormalization"
        rows = max((int(np.shape(v)[0]) for v in feed.values() if np.ndim(v)), default=0)
        return (f"ONNX Runtime's CUDA execution provider cannot run {node}: cuDNN's batch-norm kernel refuses "
                f"this input (CUDNN_STATUS_NOT_SUPPORTED; the feed's largest first axis is {rows}; measured on "
                "an H100: 96000 pillars fail, 20001 pass). It is a limit of ONNX Runtime's CUDA EP, not of the "
                "graph: TensorRT folds this BatchNormalization into the MatMul before it. Verify this shape on "
                "onnx@cpu, or keep the CUDA EP's cases below that size (the stage's model_inputs max_shape).")
    return ""


class OnnxRuntimeRunner(Runner):
    def __init__(self, onnx_path, device="cpu", intra_op_threads=0, tf32=None, optimization_level="all"):
        super().__init__()
        if optimization_level not in ("all", "disable_all"):
            raise ValueError(f"optimization_level must be 'all' or 'disable_all', got {optimization_level!r}")
        self.optimization_level = optimization_level  # 'disable_all': e.g. an fp16 emulation whose roundings must stay
        self.path = str(onnx_path)
        self.device = device
        self.tf32 = tf32
        self.threads = intra_op_threads
        self.name = f"onnx@{device}"
        self.session = None
        self.host_memory = None

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
        if self.optimization_level == "disable_all":
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
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

    def with_artifact(self, path):
        return OnnxRuntimeRunner(path, self.device, intra_op_threads=self.threads, tf32=self.tf32)

    def _input_metadata(self):
        return [TensorMeta.of(i.name, ORT_DTYPES.get(i.type), i.shape) for i in self.inputs.values()]

    def describe(self):
        return f"{self.name} ({self.path})"

    def _infer(self, feed):
        outs = self._explained(self.session.run, feed, self.output_names, {n: feed[n] for n in self.inputs})
        return dict(zip(self.output_names, outs))

    def _explained(self, run, feed, *args):
        """``run(*args)``, an execution provider's known limit (``known_runtime_limit``) raised as one
        InferenceError that says so; any other failure as it is."""
        try:
            return run(*args)
        except Exception as exc:
            known = known_runtime_limit(str(exc), self.device, feed)
            if known:
                raise InferenceError(f"{self.describe()}: {known}") from exc
            raise

    def _prepare(self, feed):
        """On CUDA: IOBinding with inputs and outputs resident on the device, so the timed call is
        the session's compute only (host copies are timed separately, end to end). On CPU: run()."""
        if not self.device.startswith("cuda"):
            run, names, bound = self.session.run, self.output_names, {n: feed[n] for n in self.inputs}
            return lambda: run(names, bound)
        return self._bound(feed)["compute"]

    def _phases(self, feed):
        return self._bound(feed) if self.device.startswith("cuda") else None

    def _bound(self, feed, session=None, first=None) -> dict:
        """Device buffers bound once; callables for host->device, compute and device->host.

        With torch's CUDA build (the ``gpu`` extra) the host side is page-locked staging memory and the
        device side torch tensors bound by pointer, as a deployment's loader would write into pinned
        buffers (a 107 MB input: ~2 ms pinned vs ~12 ms pageable on an H100 host); otherwise ONNX Runtime's
        own OrtValues copied from pageable numpy. ``self.host_memory`` says which ran (the report's phases)."""
        session = session or self.session
        idx = int(self.device.partition(":")[2] or 0)
        # output shapes from the plain session's outputs (``first``, else one plain run): a CUDA-graph session gets
        # bound runs only (an unbound host run there is captured with other buffers: a wrong, slow replay)
        if first is None:
            first = self._infer(feed)
        binding = session.io_binding()
        torch = _torch_cuda()
        if torch is None:
            return self._bound_pageable(feed, first, binding, idx, session)
        dev = torch.device("cuda", idx)
        stream_sync = torch.cuda.synchronize
        ins, outs = [], []
        for name in self.inputs:
            host = torch.from_numpy(np.ascontiguousarray(feed[name])).pin_memory()
            d = host.to(dev)
            binding.bind_input(name, "cuda", idx, host.numpy().dtype.type, list(d.shape), d.data_ptr())
            ins.append((d, host))
        for name in self.output_names:
            d = torch.empty(first[name].shape, dtype=torch.from_numpy(first[name][:0].copy()).dtype, device=dev)
            host = torch.empty(d.shape, dtype=d.dtype, pin_memory=True)
            binding.bind_output(name, "cuda", idx, first[name].dtype.type, list(d.shape), d.data_ptr())
            outs.append((d, host))
        run = session.run_with_iobinding

        def h2d():
            for d, host in ins:
                d.copy_(host, non_blocking=True)
            stream_sync(dev)  # ONNX Runtime computes on its own stream

        def compute():
            run(binding)

        def d2h():
            for d, host in outs:
                host.copy_(d, non_blocking=True)
            stream_sync(dev)
            return [host.numpy() for _, host in outs]

        compute.buffers = (ins, outs)  # bound by pointer: alive as long as the timed callable
        self.host_memory = "pinned"
        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def _bound_pageable(self, feed, first, binding, idx, session) -> dict:
        import onnxruntime as ort

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
        run = session.run_with_iobinding

        # the closures hold the device buffers as long as the callables live
        def h2d():
            for value, host in dev_in:
                value.update_inplace(host)

        def compute():
            run(binding)

        def d2h():
            return [value.numpy() for value in dev_out]

        self.host_memory = "pageable"
        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def _infer_tensors(self, feed):
        """CUDA tensors on this runner's GPU: inputs bound by pointer, outputs allocated by ONNX Runtime on the
        device and copied into torch tensors there (a device-to-device copy), so a pipeline's stages hand
        tensors to each other without a host round trip. Anything else goes through the host."""
        tensors = [v for v in feed.values() if getattr(v, "is_cuda", False)]
        idx = int(self.device.partition(":")[2] or 0)
        if not self.device.startswith("cuda") or len(tensors) != len(feed) or any(t.device.index not in (None, idx)
                                                                                 for t in tensors):
            return super()._infer_tensors(feed)
        import torch

        binding = self.session.io_binding()
        for name in self.inputs:
            value = feed[name]
            binding.bind_input(name, "cuda", idx, numpy_dtype_of(value).type, list(value.shape), value.data_ptr())
        for name in self.output_names:
            binding.bind_output(name, "cuda", idx)
        torch.cuda.current_stream(value.device).synchronize()  # the producer's kernels finished
        self._explained(self.session.run_with_iobinding, feed, binding)
        out = {}
        for name, value in zip(self.output_names, binding.get_outputs()):
            if 0 in value.shape():
                out[name] = torch.empty(value.shape(), dtype=_torch_dtype(value), device=f"cuda:{idx}")
                continue
            view = torch.as_tensor(_CudaArray(value), device=f"cuda:{idx}")
            out[name] = view.clone()  # ours, before the OrtValue's memory goes back to ONNX Runtime
        return out

    def _graph_call(self, feed):
        """ONNX Runtime's CUDA graph (``enable_cuda_graph``): a second session whose first bound run captures
        the graph; later runs replay it. Needs every node on the CUDA EP and fixed buffer addresses."""
        if not self.device.startswith("cuda"):
            return f"{self.name}: CUDA graphs need a CUDA device"
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        providers = providers_for(self.device, self.tf32)
        providers[0] = (providers[0][0], dict(providers[0][1], enable_cuda_graph="1"))
        try:
            plain = self._infer(feed)
            session = ort.InferenceSession(session_source(self.path, opts), sess_options=opts, providers=providers)
            bound = self._bound(feed, session, first=plain)
            bound["h2d"]()
            for _ in range(GRAPH_WARMUP_RUNS):  # ORT's regular runs before it captures, the capture, a replay
                bound["compute"]()
            replayed = bound["d2h"]()
        except Exception as exc:  # ORT refuses graphs with CPU-placed nodes or dynamic buffers
            return f"{self.name}: ONNX Runtime could not capture a CUDA graph: {str(exc).splitlines()[0]}"
        for name, got in zip(self.output_names, replayed):
            want = plain[name]
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-5, equal_nan=True):
                diff = np.abs(got.astype(np.float64) - want).max() if got.shape == want.shape else "shape"
                return (f"{self.name}: ONNX Runtime's CUDA-graph replay computes something else than the plain run "
                        f"(output {name!r}: max |diff| {diff}); not timed")
        compute = bound["compute"]
        compute.session = session  # kept alive with the callable
        compute.bound = bound
        return compute

    def _deactivate(self):
        self.session = None


GRAPH_WARMUP_RUNS = 3  # ONNX Runtime captures after its first regular bound run(s)


def _torch_cuda():
    """torch when it is a CUDA build with a device (pinned staging buffers), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


class _CudaArray:
    """``__cuda_array_interface__`` of an OrtValue on a CUDA device, so torch can view it without a copy."""

    def __init__(self, value):
        self.value = value  # kept alive while viewed
        self.__cuda_array_interface__ = {"shape": tuple(value.shape()), "data": (value.data_ptr(), False),
                                         "typestr": np.dtype(ORT_DTYPES[value.data_type()]).str, "version": 2}


def _torch_dtype(value):
    import torch

    return torch.from_numpy(np.empty(0, ORT_DTYPES[value.data_type()])).dtype
