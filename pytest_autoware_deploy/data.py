"""Samples from the spec's data loader, checked against the spec, and batched to declared shapes.

A sample is ``{"inputs": {name: ndarray with batch dim}, "target": optional}``.
"""

from __future__ import annotations

import inspect

import numpy as np

from .errors import SpecError
from .spec.resolve import resolve_callable


def load_samples(spec):
    """Call ``data.loader(**data.kwargs)``; passes ``runtime_io.info_pkl`` as ``info_pkl`` if it takes one."""
    dcfg = spec.cfg["data"]
    loader = resolve_callable(dcfg["loader"], spec, "data.loader")
    kwargs = dict(dcfg["kwargs"])
    info = spec.cfg["runtime_io"]["info_pkl"]
    try:
        params = inspect.signature(loader).parameters
    except (TypeError, ValueError):
        params = {}
    if info and "info_pkl" in params and "info_pkl" not in kwargs:
        kwargs["info_pkl"] = info
    try:
        samples = loader(**kwargs)
    except TypeError as exc:
        raise SpecError(spec.file, "data.kwargs", f"{dcfg['loader']} rejected the kwargs: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise SpecError(spec.file, "data", f"{dcfg['loader']} failed: {exc}") from None
    try:
        n = len(samples)
    except TypeError:
        raise SpecError(spec.file, "data.loader", f"{dcfg['loader']} returned {type(samples).__name__}, "
                        "expected an indexable of samples (list or Dataset with __len__)") from None
    if n == 0:
        raise SpecError(spec.file, "data.loader", f"{dcfg['loader']} returned no samples")
    check_sample(spec, samples[0], 0)
    return samples


def check_sample(spec, sample, index):
    """Raise a SpecError when a sample's inputs do not match the spec's input names/shapes."""
    if not isinstance(sample, dict) or "inputs" not in sample:
        raise SpecError(spec.file, "data.loader", f"sample {index} is {type(sample).__name__}; expected "
                        "dict(inputs={name: array}, target=...)")
    inputs = sample["inputs"]
    missing = [n for n in spec.input_names if n not in inputs]
    if missing:
        raise SpecError(spec.file, "onnx_config.input_names", f"sample {index} has no input(s) {missing}; "
                        f"it has {sorted(inputs)}")
    for ispec in spec.inputs:
        arr = np.asarray(inputs[ispec.name])
        ok = True
        if ispec.min_shape and ispec.max_shape:
            ok = len(arr.shape) == len(ispec.min_shape) and all(
                lo <= d <= hi for d, lo, hi in zip(arr.shape[1:], ispec.min_shape[1:], ispec.max_shape[1:]))
        elif ispec.opt_shape:
            ok = tuple(arr.shape[1:]) == tuple(ispec.opt_shape[1:])
        if not ok:
            want = (f"within min {ispec.min_shape} / max {ispec.max_shape}" if ispec.min_shape
                    else f"{ispec.opt_shape} (any batch)")
            raise SpecError(spec.file, "backend_config.model_inputs",
                            f"input '{ispec.name}' of sample {index} has shape {tuple(arr.shape)}, "
                            f"expected {want}")


def batch_inputs(spec, samples, start, shapes: dict | None = None):
    """Inputs for one verification case.

    ``shapes`` maps input name -> full shape. When only the batch differs from the samples,
    consecutive samples are stacked (wrapping around); when other dims differ, a seeded normal
    array of that shape is used, since real data at that resolution is not available.
    """
    first = samples[start % len(samples)]["inputs"]
    out = {}
    for name in spec.input_names:
        base = np.asarray(first[name])
        shape = tuple(shapes[name]) if shapes and name in shapes else base.shape
        if tuple(shape[1:]) == tuple(base.shape[1:]):
            rows, i = [], start
            while sum(r.shape[0] for r in rows) < shape[0]:
                rows.append(np.asarray(samples[i % len(samples)]["inputs"][name]))
                i += 1
            out[name] = np.ascontiguousarray(np.concatenate(rows, 0)[: shape[0]])
        else:
            out[name] = generated_like(base, shape, np.random.default_rng(start))
    return out


def generated_like(base: np.ndarray, shape, rng) -> np.ndarray:
    """A seeded array of ``shape`` with ``base``'s dtype: floats standard normal; integers and bools drawn
    uniformly from the values ``base`` spans (an index or count input stays a valid one, where cast
    normals would give mostly 0 and -1)."""
    if base.dtype.kind in "iub":
        lo, hi = (int(base.min()), int(base.max())) if base.size else (0, 0)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(base.dtype)
    return rng.standard_normal(shape).astype(base.dtype)


def prefetched(samples, indices, depth: int = 2):
    """Yield ``(i, samples[i])`` with up to ``depth`` samples loaded ahead on a background thread.

    Loading (file reads, lidar projection) overlaps inference instead of adding to it; the bounded
    queue keeps memory flat however many samples are evaluated. A loader exception is re-raised
    here, at the index it belongs to. ``depth=0`` loads inline.
    """
    import queue
    import threading

    indices = list(indices)
    if depth <= 0:
        for i in indices:
            yield i, samples[i]
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def load():
        for i in indices:
            if stop.is_set():
                return
            try:
                item = (i, samples[i], None)
            except BaseException as exc:  # handed to the consumer, raised there
                item = (i, None, exc)
            while not stop.is_set():
                try:
                    slots.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[2] is not None:
                return

    thread = threading.Thread(target=load, name="deploy-prefetch", daemon=True)
    thread.start()
    try:
        for _ in indices:
            i, sample, exc = slots.get()
            if exc is not None:
                raise exc
            yield i, sample
    finally:
        stop.set()
        if thread is not threading.current_thread():  # an abandoned generator may be finalized on the loader
            thread.join(timeout=5)
