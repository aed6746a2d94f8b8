"""PyTorch reference runner (CPU or CUDA), eager, ``torch.inference_mode``.

The runner never moves the module it is given: on another device it runs a copy of its own
(``model_on_device``), so ``pytorch`` and ``pytorch@cuda:0`` in one session each keep their weights
where they belong, and the CPU reference stays the CPU reference.
"""

from __future__ import annotations

import numpy as np

from .base import Runner
from .inputs import TensorMeta


class PyTorchRunner(Runner):
    def __init__(self, model, input_names, output_names, device="cpu", input_metadata=None):
        """``input_metadata``: TensorMeta per input (the spec's declarations); None: names only, any dtype/shape."""
        super().__init__()
        self.source = model      # as given: read, never moved
        self.model = model       # what runs: ``source`` itself, or its copy on ``device`` once active
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.device = device
        self.name = f"pytorch@{device}"
        self._declared = input_metadata

    def _activate(self):
        import torch

        from ..export.pytorch_model import model_on_device

        model = model_on_device(self.source, self.device)  # BackendUnavailable where torch has no such device
        if self.device.startswith("cuda"):
            # the reference computes in true fp32: TF32 is a precision policy of the backends under test
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.model = model.eval()

    def _input_metadata(self):
        declared = {m.name: m for m in self._declared or ()}
        return [declared.get(n) or TensorMeta(n) for n in self.input_names]

    def _deactivate(self):
        self.model = self.source  # a device copy is freed with the runner's last reference to it

    def _to_outputs(self, result):
        import torch

        if isinstance(result, torch.Tensor):
            result = (result,)
        elif isinstance(result, dict):
            result = tuple(result[n] for n in self.output_names)
        if len(result) != len(self.output_names):
            raise ValueError(f"pytorch model returned {len(result)} outputs, onnx_config.output_names has "
                             f"{len(self.output_names)}: {self.output_names}")
        return result

    def _run(self, tensors):
        import torch

        with torch.inference_mode():
            return self._to_outputs(self.model(*tensors))

    def _infer_tensors(self, feed):
        """Tensors in, tensors out, on the runner's device (moved there if the feed is elsewhere)."""
        device = next(iter(feed.values())).device if feed else self.device
        outs = self._run([feed[n].to(self.device) for n in self.input_names])
        return {n: o.detach().to(device) for n, o in zip(self.output_names, outs)}

    def _tensors(self, feed):
        import torch

        return [torch.from_numpy(np.ascontiguousarray(feed[n])).to(self.device) for n in self.input_names]

    def _infer(self, feed):
        outs = self._run(self._tensors(feed))
        return {n: o.detach().float().cpu().numpy() for n, o in zip(self.output_names, outs)}

    def _prepare(self, feed):
        tensors = self._tensors(feed)
        return lambda: self._run(tensors)

    def _phases(self, feed):
        if not self.device.startswith("cuda"):
            return None
        import torch

        host = [torch.from_numpy(np.ascontiguousarray(feed[n])).pin_memory() for n in self.input_names]
        dev = [h.to(self.device) for h in host]
        out = list(self._run(dev))

        def h2d():
            for d, h in zip(dev, host):
                d.copy_(h, non_blocking=True)

        def compute():
            out[:] = self._run(dev)

        def d2h():
            return [o.cpu() for o in out]

        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def _graph_call(self, feed):
        """torch.cuda.CUDAGraph capture of the forward on static input buffers (after warm-up on a side
        stream, as torch's docs require); replay is the timed call."""
        if not self.device.startswith("cuda"):
            return f"{self.name}: CUDA graphs need a CUDA device"
        import torch

        static = self._tensors(feed)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        try:
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._run(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._run(static)
        except Exception as exc:  # data-dependent shapes, host syncs inside the forward, ...
            return f"{self.name}: torch could not capture a CUDA graph: {str(exc).splitlines()[0]}"
        def replay():
            graph.replay()

        replay.buffers = (static, out)  # the captured addresses: alive as long as the timed callable
        return replay

    def synchronize(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
