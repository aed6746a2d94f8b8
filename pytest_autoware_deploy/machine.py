"""What machine produced a result: CPU model and ISA features, library versions, accelerator.

Why it exists: int8 and fp16 numbers depend on the CPU, not only on package versions. ONNX Runtime's
x86 int8 kernels multiply u8 x s8 with ``vpmaddubsw`` unless the CPU has VNNI (AVX512-VNNI, AVX-VNNI)
or AMX; ``vpmaddubsw`` adds pairs of products into a saturating 16-bit integer, so the same int8 graph
gives different (worse) answers on an AVX2-only AMD EPYC than on a Xeon with VNNI. A report that does
not name the ISA cannot explain such a difference, and the int8 settings are chosen from it.

A bottom-layer module: standard library only at import time; torch/onnxruntime are imported lazily
inside :func:`fingerprint`. Results are cached per process (the machine does not change under us) and
returned as fresh copies, so a caller that edits one cannot alter what the next caller sees.
"""

from __future__ import annotations

import copy
import functools
import platform
import sys

# ISA flags (Linux /proc/cpuinfo spelling) that decide which int8 / fp16 kernels a runtime can use.
ISA_FLAGS = ("sse4_1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
# Any of these gives ONNX Runtime's MLAS a u8s8 dot product accumulating in 32 bits (no 16-bit saturation).
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

_CPUINFO = "/proc/cpuinfo"


def parse_cpuinfo(text: str) -> dict:
    """Model name, vendor and ISA flags from the text of Linux ``/proc/cpuinfo`` (first processor block;
    x86 ``flags``, arm ``Features``). Pure: the same text always gives the same dict."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # every processor repeats the same block; the first is enough
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    processor = fields.get("processor", "")  # x86: an index; 32-bit arm kernels: the model
    return {"model": fields.get("model name") or fields.get("hardware")
            or (processor if processor and not processor.isdigit() else None),
            "vendor": fields.get("vendor_id") or fields.get("cpu implementer") or None,
            "flags": {name: name in flags for name in ISA_FLAGS}}


def int8_kernel(info: dict) -> str:
    """The u8s8 dot-product path ONNX Runtime's x86 kernels take on this CPU, from ``cpu_info()``:
    ``amx``, ``vnni`` (32-bit accumulation, exact), ``avx2`` (``vpmaddubsw``: pairs of u8*s8 products
    summed into a saturating int16, wrong whenever two products exceed 32767), or ``other`` (non-x86,
    or flags unknown)."""
    flags = info.get("flags") or {}
    if flags.get("amx_int8"):
        return "amx"
    if flags.get("avx512_vnni") or flags.get("avx_vnni"):
        return "vnni"
    if flags.get("avx2"):
        return "avx2"
    return "other"


def int8_may_saturate(info: dict) -> bool:
    """True where ONNX Runtime's u8s8 kernels can saturate their 16-bit intermediate (x86 without VNNI/AMX)."""
    return int8_kernel(info) == "avx2"


def _read_cpuinfo() -> str | None:
    try:
        with open(_CPUINFO, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _cpu_info() -> dict:
    text = _read_cpuinfo() if sys.platform.startswith("linux") else None
    if text:
        info = parse_cpuinfo(text)
        info["source"] = _CPUINFO
    else:  # macOS/Windows: no flags without native calls; say so rather than guess
        info = {"model": platform.processor() or None, "vendor": None, "flags": {}, "source": "platform"}
    info["model"] = info["model"] or platform.processor() or platform.machine() or None
    info["machine"] = platform.machine()
    info["int8_kernel"] = int8_kernel(info)
    return info


def cpu_info() -> dict:
    """This CPU: ``model``, ``vendor``, ``machine`` (arch), ``flags`` (ISA_FLAGS -> bool; empty when they
    cannot be read), ``int8_kernel`` (see :func:`int8_kernel`) and ``source``. Cached; a fresh copy each call."""
    return copy.deepcopy(_cpu_info())


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _ort_providers() -> list[str] | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return list(onnxruntime.get_available_providers())


def _gpus() -> list[dict] | None:
    """Every CUDA device torch sees (name, compute capability, memory), or None without CUDA/torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    driver = _nvidia_driver()
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                     "memory_gib": round(props.total_memory / 2**30, 1), "driver": driver,
                     "cuda_runtime": torch.version.cuda})
    return gpus


def _nvidia_driver() -> str | None:
    """The kernel driver's version (Linux exposes it without NVML); None where it cannot be read."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    words = first.split()
    return next((w for w in words if w[:1].isdigit() and "." in w), None)


def _module_version(name: str) -> str | None:
    """The imported module's ``__version__`` (keeps the local tag: torch '2.11.0+cu130' vs '2.13.0+cpu', which
    the distribution metadata drops), else the distribution's version, else None."""
    import importlib

    try:
        return str(importlib.import_module(name).__version__)
    except (ImportError, AttributeError):
        return _dist_version(name)


@functools.lru_cache(maxsize=1)
def _fingerprint() -> dict:
    versions = {name: _module_version(name) for name in ("torch", "onnx", "onnxruntime", "numpy")}
    for dist in ("onnxruntime-gpu", "tensorrt"):  # which wheel provides onnxruntime; TensorRT without importing it
        v = _dist_version(dist)
        if v is not None:
            versions[dist] = v
    return {"cpu": _cpu_info(), "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "system": platform.system(), "machine": platform.machine(),
            "versions": versions, "onnxruntime_providers": _ort_providers(), "gpu": _gpus()}


def fingerprint() -> dict:
    """Machine identity without the hostname: ``cpu`` (see :func:`cpu_info`), ``python``, ``platform``,
    ``versions`` (torch, onnx, onnxruntime, numpy; onnxruntime-gpu/tensorrt when installed),
    ``onnxruntime_providers`` and ``gpu`` (list of CUDA devices, or None). Cached; a fresh copy each call."""
    return copy.deepcopy(_fingerprint())


def cache_clear() -> None:
    """Forget the cached answers (tests that swap ``/proc/cpuinfo`` for a fixture)."""
    _cpu_info.cache_clear()
    _fingerprint.cache_clear()
