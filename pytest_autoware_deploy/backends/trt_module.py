"""The TensorRT Python module by name: ``tensorrt`` (10, 11) or ``tensorrt_rtx``, and where their APIs differ.

One builder and one runner serve both modules, parametrized by the module name, as Polygraphy
imports TensorRT lazily by name (``polygraphy/mod/trt_importer.py``) for the same reason. The
differences are answered here, by asking the module rather than by version tables where it can:

=========================== ========================== ========================== ===========================
question                    TensorRT 10                TensorRT 11                TensorRT-RTX
=========================== ========================== ========================== ===========================
weak typing (FP16/INT8...)  builder flags              gone: strongly typed       gone: strongly typed
build needs a GPU           yes (the current device)   yes (the current device)   no: CPU-only AOT for the
                                                                                  compute capabilities set
timing cache                used                       used                       not used (deprecated no-op
                                                                                  that queries for a GPU)
can this engine run here    deserialize and see        deserialize and see        ``get_engine_validity``
JIT kernel cache            none                       none                       runtime cache (per engine)
=========================== ========================== ========================== ===========================

This module imports nothing from the exporter: ``export/tensorrt.py`` (builder) and
``backends/tensorrt.py`` (runner) both stand on it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections import deque
from pathlib import Path

from ..errors import ArtifactError, BackendUnavailable

log = logging.getLogger("pytest_autoware_deploy.tensorrt")

MODULES = {"tensorrt": ("TensorRT", 10, "pip install '.[tensorrt]'"),
           "tensorrt_rtx": ("TensorRT-RTX", 1, "pip install tensorrt-rtx")}


def load_trt(module: str = "tensorrt", consequence: str = ""):
    """The module named ``module`` (``tensorrt`` >= 10 or ``tensorrt_rtx`` >= 1), or BackendUnavailable saying
    why not and what that means (``consequence``)."""
    if module not in MODULES:
        raise ArtifactError(f"unknown TensorRT module {module!r}; expected one of {', '.join(MODULES)}")
    title, minimum, install = MODULES[module]
    try:
        trt = importlib.import_module(module)
    except (ImportError, OSError) as exc:
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({type(exc).__name__}: {exc})"
        raise BackendUnavailable(f"{title} is not installed here (no '{module}' module{detail}; {install}): "
                                 f"{consequence}") from None
    if major_version(trt) < minimum:
        api = "the TensorRT 10/11 API" if module == "tensorrt" else f"{title} {minimum}.x or newer"
        raise BackendUnavailable(f"{title} {trt.__version__} is too old: this plugin uses {api}; {consequence}")
    return trt


def module_name(trt) -> str:
    return "tensorrt_rtx" if trt.__name__.split(".")[0] == "tensorrt_rtx" else "tensorrt"


def is_rtx(trt) -> bool:
    return module_name(trt) == "tensorrt_rtx"


def label(trt) -> str:
    """'TensorRT 10.13.0.35' / 'TensorRT-RTX 1.7.1.116': how messages name the module."""
    return f"{MODULES[module_name(trt)][0]} {trt.__version__}"


def major_version(trt) -> int:
    return int(trt.__version__.split(".")[0])


def weakly_typed(trt) -> bool:
    """Whether precision builder flags (FP16, INT8) exist: TensorRT 10 only; 11 and RTX are strongly typed."""
    return not is_rtx(trt) and major_version(trt) < 11


def uses_timing_cache(trt) -> bool:
    """TensorRT-RTX's timing cache changes nothing in the engine and makes the CPU-only build query for a GPU."""
    return not is_rtx(trt)


def builds_without_gpu(trt) -> bool:
    """TensorRT-RTX compiles ahead of time on the CPU for a set of compute capabilities (``ComputeCapability``)."""
    return is_rtx(trt) and hasattr(trt, "ComputeCapability")


def default_compute_capabilities(trt) -> list[str]:
    """What a TensorRT-RTX engine built without a compute-capability list targets: every ``ComputeCapability``
    the module names from 8.0 up (Ampere and later; 7.5 only when asked for), read from the module's enum."""
    return [capability_text(cc) for cc in sorted(_named_capabilities(trt)) if cc >= (8, 0)]


def compute_capability_members(trt, wanted) -> list:
    """``ComputeCapability`` members for ``wanted`` ('8.6', (8, 6) or 86), or one error listing what the module has."""
    named = _named_capabilities(trt)
    out = []
    for item in wanted:
        cc = parse_capability(item)
        if cc not in named:
            have = ", ".join(capability_text(c) for c in sorted(named))
            raise ArtifactError(f"{label(trt)} cannot target compute capability {capability_text(cc)}: it "
                                f"compiles for {have}")
        out.append(named[cc])
    return out


def parse_capability(item) -> tuple[int, int]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return int(item[0]), int(item[1])
    text = str(item).strip().lower().removeprefix("sm")
    if re.fullmatch(r"\d+\.\d", text):
        major, minor = text.split(".")
        return int(major), int(minor)
    if re.fullmatch(r"\d{2,3}", text):
        return int(text[:-1]), int(text[-1])
    raise ArtifactError(f"compute capability {item!r}: expected 'major.minor' such as '8.6'")


def capability_text(cc) -> str:
    return f"{cc[0]}.{cc[1]}"


def _named_capabilities(trt) -> dict:
    members = getattr(getattr(trt, "ComputeCapability", None), "__members__", {})
    out = {}
    for name, member in members.items():
        m = re.fullmatch(r"SM(\d+)(\d)", name)
        if m:
            out[(int(m.group(1)), int(m.group(2)))] = member
    return out


# -- logging ------------------------------------------------------------------------------------------------
_LOGGERS: dict = {}


def trt_logger(trt):
    """One logger per module and process (TensorRT warns when builder and runtime get different ones)."""
    logger = _LOGGERS.get(module_name(trt))
    if logger is None or logger.trt is not trt:
        logger = _LOGGERS[module_name(trt)] = _make_logger(trt)
    return logger


def _make_logger(trt):
    sev = trt.ILogger.Severity
    levels = {sev.INTERNAL_ERROR: logging.CRITICAL, sev.ERROR: logging.ERROR, sev.WARNING: logging.WARNING,
              sev.INFO: logging.DEBUG, sev.VERBOSE: 5}
    name = label(trt).partition(" ")[0]

    class TrtLogger(trt.ILogger):
        """Routes the module's messages to Python logging; keeps recent errors for the exception text."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.trt = trt
            self.errors = deque(maxlen=20)

        def log(self, severity, msg):
            level = levels.get(severity, logging.INFO)
            if level >= logging.ERROR:
                self.errors.append(str(msg).strip())
            if log.isEnabledFor(level):
                log.log(level, "%s: %s", name, msg)

    return TrtLogger()


def logged_errors(logger, said="TensorRT said") -> str:
    return (f"; {said}: " + " | ".join(logger.errors)) if logger.errors else ""


# -- can the runtime run an engine here ---------------------------------------------------------------------
# engine validity diagnostics that mean "this machine cannot run it" (skip) rather than "the file is bad"
ENVIRONMENT_DIAGNOSTICS = ("UNSUPPORTED_CC", "OLD_CUDA_DRIVER", "OLD_CUDA_RUNTIME", "INSUFFICIENT_GPU_MEMORY",
                           "CUDA_ERROR")


class EngineVerdict:
    """The runtime's answer for one engine on this machine: ``ok``; else ``reason`` in the runtime's words and
    whether the machine is the problem (``unavailable``: skip) or the engine file (an artifact error)."""

    def __init__(self, ok: bool, reason: str = "", unavailable: bool = True, validity: str | None = None,
                 diagnostics: tuple = ()):
        self.ok, self.reason, self.unavailable = ok, reason, unavailable
        self.validity, self.diagnostics = validity, diagnostics

    def raise_unless_ok(self):
        if not self.ok:
            raise (BackendUnavailable if self.unavailable else ArtifactError)(self.reason)

    def __repr__(self):
        return f"EngineVerdict(ok={self.ok}, validity={self.validity}, reason={self.reason!r})"


def ask_runtime(trt, runtime, logger, data: bytes, where) -> EngineVerdict | None:
    """``runtime.get_engine_validity`` (TensorRT-RTX reads the engine header: version, compute capability,
    CUDA driver/runtime, memory) as a verdict; None where the module has no such API (TensorRT 10/11: only
    deserializing tells)."""
    check = getattr(runtime, "get_engine_validity", None)
    if check is None:
        return None
    logger.errors.clear()
    try:
        validity, bits = check(data)
    except Exception as exc:  # the binding raises on a buffer it cannot read at all
        return EngineVerdict(False, f"{label(trt)} cannot read {where}: {type(exc).__name__}: {exc}",
                             unavailable=False, validity="INVALID")
    name = getattr(validity, "name", str(validity).rpartition(".")[2])
    flags = tuple(n for n, m in getattr(trt.EngineInvalidityDiagnostics, "__members__", {}).items()
                  if int(bits) & int(m))
    if name != "INVALID":
        return EngineVerdict(True, "" if name == "VALID" else f"{label(trt)}: {where} is {name} here",
                             validity=name, diagnostics=flags)
    said = logged_errors(logger, "it logged")
    detail = f" ({', '.join(flags)})" if flags else ""
    unavailable = not flags or any(f in ENVIRONMENT_DIAGNOSTICS for f in flags)
    return EngineVerdict(False, f"{label(trt)} cannot run {where} here: get_engine_validity() says "
                                f"INVALID{detail}{said}", unavailable=unavailable, validity=name, diagnostics=flags)


def select_device(device):
    """Make ``device`` ('cuda:N') the current CUDA device where torch can (the runtime and builder use the
    current one); a no-op without CUDA."""
    try:
        import torch

        if str(device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.set_device(torch.device(device))
    except Exception as exc:  # an index beyond the machine's devices
        log.debug("cannot select %s: %s", device, exc)


@contextlib.contextmanager
def on_device(device):
    """``device`` ('cuda:N') current for the block, the previous one after (TensorRT builds for, and its runtime
    answers about, the current device); a plain block without CUDA or without a device."""
    cuda = False
    if device is not None and str(device).startswith("cuda"):
        try:
            import torch

            cuda = torch.cuda.is_available()
        except Exception:  # no usable torch CUDA build
            cuda = False
    if not cuda:
        yield
        return
    with torch.cuda.device(torch.device(device)):
        yield


def engine_support(engine_path, module: str = "tensorrt", device="cuda:0") -> EngineVerdict:
    """Whether ``module``'s runtime can run the engine at ``engine_path`` on ``device`` here, in the runtime's
    own words: its engine-validity check where it has one (TensorRT-RTX), else whether it deserializes;
    then whether torch can give the runner CUDA memory on ``device``."""
    path = Path(engine_path)
    try:
        trt = load_trt(module, f"{path} cannot run")
    except BackendUnavailable as exc:
        return EngineVerdict(False, str(exc))
    if not path.is_file():
        return EngineVerdict(False, f"TensorRT engine {path}: not found", unavailable=False)
    data = path.read_bytes()
    logger = trt_logger(trt)
    with on_device(device):
        runtime = trt.Runtime(logger)
        verdict = ask_runtime(trt, runtime, logger, data, path)
        if verdict is None:
            logger.errors.clear()
            engine = runtime.deserialize_cuda_engine(data)
            if engine is None:
                return EngineVerdict(False, f"{label(trt)} cannot deserialize {path} here"
                                            f"{logged_errors(logger, 'it logged')}")
            verdict = EngineVerdict(True)
            del engine
    if verdict.ok:
        problem = torch_cuda_problem(device)
        if problem:
            return EngineVerdict(False, problem)
    return verdict


def torch_cuda_problem(device) -> str | None:
    """Why the runner's torch CUDA buffers cannot live on ``device``, or None."""
    import torch

    if not str(device).startswith("cuda"):
        return f"tensorrt on {device}: TensorRT engines run on CUDA devices ('cuda' or 'cuda:N')"
    if not torch.cuda.is_available():
        return (f"tensorrt on {device}: torch has no CUDA device here "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False)")
    return None
