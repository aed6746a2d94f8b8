"""Every evaluated sample is a verification sample: the streaming agreement of a spec's backends.

Why. ``test_verification`` compares ``verification.num_samples`` samples; a divergence that hits one
frame in fifty passes it. Evaluation already runs each backend on every sample, so the session's
evaluation loop hands each (backend, sample, outputs) to ``on_evaluated_sample`` (one hook call in
``SpecState._evaluate``). A reference's own evaluation outputs are kept (up to ``KEPT_BYTES``: memory is
bounded whatever the sample count); for a backend under test, the reference's outputs of the same sample
come from there, or, beyond the budget or when the reference was not evaluated first, from one reference
inference on the same inputs right then (dropped after the comparison). The pair feeds
``streaming.BackendAgreement`` (element-wise outputs) and ``DetectionAgreement`` (outputs of
``verification.outputs`` detection checks). ``test_agreement`` reads the verdicts; on a failure
``agreement_failure`` localizes the worst sample's divergence to an ONNX node (``verify.localize``).

This module takes the session's ``SpecState`` as a parameter (its ``spec``, ``samples``, ``infer``,
``policy_onnx``, ``onnx``, ``model``, ``store``) and imports nothing above ``verify``/``spec``/``export``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from .streaming import BackendAgreement, Criterion, DetectionAgreement, Limit, limit_for, parse_statistic

_ATTR = "_deploy_agreement"  # where a SpecState keeps its SpecAgreement
LIMIT_KEYS = ("max_failed_rate", "min_top1", "min_match_rate")
KEPT_BYTES = 64 << 20  # reference outputs kept across backends' evaluations (memory bound, any sample count)


@dataclass(frozen=True)
class AgreementSettings:
    statistic: str
    statistics: dict          # output -> statistic
    limits: dict              # policy -> Limit (spec entries only)
    localize: bool
    chunk_size: int

    def limit(self, policy: str) -> Limit:
        return self.limits.get(policy, limit_for(policy))


def agreement_settings(spec) -> AgreementSettings:
    """The ``verification`` keys of streaming agreement, validated: one SpecError naming the key."""
    vcfg = spec.cfg["verification"]

    def statistic(value, key):
        try:
            return parse_statistic(value)
        except ValueError as exc:
            raise SpecError(spec.file, key, str(exc)) from None

    default = statistic(vcfg.get("statistic", "max"), "verification.statistic")
    per_output = {}
    for name, value in (vcfg.get("statistics") or {}).items():
        key = f"verification.statistics.{name}"
        if name not in spec.output_names:
            raise SpecError(spec.file, key, f"'{name}' is not an ONNX output ({spec.output_names})")
        per_output[name] = statistic(value, key)
    limits = {}
    from ..export.precision import POLICIES

    for policy, entry in (vcfg.get("limits") or {}).items():
        key = f"verification.limits.{policy}"
        if policy not in POLICIES:
            raise SpecError(spec.file, key, f"unknown precision policy {policy!r}; expected one of "
                            f"{', '.join(POLICIES)}")
        if not isinstance(entry, dict):
            raise SpecError(spec.file, key, f"expected dict({', '.join(LIMIT_KEYS)}), got {entry!r}")
        values = {**{k: getattr(limit_for(policy), k) for k in LIMIT_KEYS}}
        for k, v in entry.items():
            if k not in LIMIT_KEYS:
                from ..spec.schema import suggest

                raise SpecError(spec.file, f"{key}.{k}", f"unknown key{suggest(k, LIMIT_KEYS)}; expected one of "
                                f"{', '.join(LIMIT_KEYS)}")
            if v is None and k != "max_failed_rate":
                values[k] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise SpecError(spec.file, f"{key}.{k}", f"expected a fraction in [0, 1], got {v!r}")
            values[k] = float(v)
        limits[policy] = Limit(**values)
    loc = vcfg.get("localization") or {}
    chunk = loc.get("chunk_size", 32)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise SpecError(spec.file, "verification.localization.chunk_size",
                        f"expected a positive number of tensors per run, got {chunk!r}")
    return AgreementSettings(default, per_output, limits, bool(loc.get("enabled", True)), chunk)


def _tolerance(state, backend) -> dict:
    from ..export.precision import tolerance_for

    return tolerance_for(state.spec, backend.policy_name, state.device_of(backend))


class SpecAgreement:
    """One spec's accumulators, per backend under test (its reference: ``spec.reference_for``)."""

    def __init__(self, state):
        from .output_checks import output_checks, verified_outputs

        spec = state.spec
        self.state = state
        self.settings = agreement_settings(spec)
        self.checks = output_checks(spec)
        self.elementwise = [n for n in verified_outputs(spec) if n not in self.checks]
        self.targets = {str(b): b for b in spec.verify_targets()}
        self.classifier = spec.cfg["evaluation"]["evaluator"] == "classification"
        self.backends: dict[str, BackendAgreement] = {}
        self.detections: dict[str, dict[str, DetectionAgreement]] = {}
        self.references = {str(spec.reference_for(b)) for b in spec.verify_targets()}
        self._kept: dict[tuple, dict] = {}   # (reference, sample) -> its evaluation outputs, within a byte budget
        self._kept_bytes = 0

    def wants(self, backend) -> bool:
        return str(backend) in self.targets and str(self.state.spec.reference_for(backend)) != str(backend)

    def _accumulators(self, backend):
        key = str(backend)
        if key not in self.backends:
            tol = _tolerance(self.state, backend)
            ref = str(self.state.spec.reference_for(backend))
            criteria = {n: Criterion(tol["atol"], tol["rtol"], tol.get("min_cosine"),
                                     self.settings.statistics.get(n, self.settings.statistic))
                        for n in self.elementwise}
            default = Criterion(tol["atol"], tol["rtol"], tol.get("min_cosine"), self.settings.statistic)
            self.backends[key] = BackendAgreement(
                key, ref, default, criteria, tuple(self.elementwise) if self.classifier else ())
            self.detections[key] = {n: DetectionAgreement(n, where=f"backend {key} vs {ref}, output '{n}'")
                                    for n in self.checks}
        return self.backends[key], self.detections[key]

    def reset(self, backend):
        """A backend's evaluation starts (again): its accumulators start empty."""
        self.backends.pop(str(backend), None)
        self.detections.pop(str(backend), None)

    def keep_reference(self, backend, sample_idx: int, outputs: dict):
        """A reference's evaluation outputs, kept so that the backends compared with it need no second
        reference inference; up to KEPT_BYTES in all (beyond it, the reference runs again per sample)."""
        import numpy as np

        size = sum(np.asarray(v).nbytes for v in outputs.values())
        if self._kept_bytes + size <= KEPT_BYTES:
            self._kept[(str(backend), sample_idx)] = {k: np.array(v, copy=True) for k, v in outputs.items()}
            self._kept_bytes += size

    def update(self, backend, sample_idx: int, inputs: dict, outputs: dict):
        from .output_checks import run_detection_check

        spec = self.state.spec
        ref_backend = spec.reference_for(backend)
        reference = self._kept.get((str(ref_backend), sample_idx))
        if reference is None:
            reference = self.state.infer(ref_backend, inputs, f"agreement sample {sample_idx}")
        elementwise, detections = self._accumulators(backend)
        elementwise.update(sample_idx, {n: reference[n] for n in self.elementwise if n in reference}, outputs)
        for name, check in self.checks.items():
            where = (f"spec {spec.name}, backend {backend} vs {ref_backend}, output '{name}', "
                     f"sample {sample_idx}")
            detections[name].add(sample_idx, run_detection_check(spec, check, reference, outputs,
                                                                 backend.policy_name, where,
                                                                 self.state.device_of(backend)))

    def verdicts(self, backend) -> dict:
        """output -> Verdict over the samples evaluated so far (the policy's limit)."""
        elementwise, detections = self._accumulators(backend)
        limit = self.settings.limit(backend.policy_name)
        out = dict(elementwise.verdicts(limit))
        out.update({n: acc.verdict(limit) for n, acc in detections.items()})
        return out


def agreement_of(state) -> SpecAgreement:
    agreement = state.__dict__.get(_ATTR)
    if agreement is None:
        agreement = SpecAgreement(state)
        state.__dict__[_ATTR] = agreement
    return agreement


def on_evaluated_sample(state, backend, sample_idx: int, inputs: dict, outputs: dict):
    """The evaluation loop's hook: feed one evaluated sample to the backend's agreement (no-op for a
    reference, a stage, or a spec without verification)."""
    spec = state.spec
    if spec.cfg.get("stage") or spec.export_mode == "none" or not spec.cfg["export"]["verify"]:
        return
    agreement = agreement_of(state)
    if str(backend) in agreement.references:
        agreement.keep_reference(backend, sample_idx, outputs)
    if not agreement.wants(backend):
        return
    if sample_idx == 0:
        agreement.reset(backend)
    agreement.update(backend, sample_idx, inputs, outputs)


# -- the failure: verdicts, report entry, localization -------------------------------------------------------
def _worst_failing(summary: dict):
    for item in summary.get("worst", []):
        if not item.get("passed", True):
            return item["sample"]
    return summary.get("first_failed")


def localization_graphs(state, backend) -> tuple:
    """(graph the backend runs, why not localized): ONNX Runtime backends of single-graph specs only."""
    spec = state.spec
    if backend.base != "onnx":
        return None, (f"localization runs ONNX graphs on ONNX Runtime; backend {backend} is not localized "
                      "(the graph it was built from may be right where the backend is not)")
    if spec.cfg.get("pipeline", {}).get("stages") and not spec.cfg.get("stage"):
        return None, "a pipeline is localized per stage: see test_stage_verification"
    from .fp16_state import measured_graph

    measured = measured_graph(state, backend)
    return measured[0] if measured else state.policy_onnx(backend.policy_name).path, ""


def localize_sample(state, backend, sample_idx: int, feed: dict | None = None) -> tuple[str, dict]:
    """Localize ``backend``'s divergence on one sample: against the PyTorch model, and for fp16/int8 also
    against the fp32 graph (where precision, not export, is at fault). Returns (message, report entry)."""
    from .compare import Tolerance
    from .localize import localize, localize_against_onnx

    spec = state.spec
    settings = agreement_settings(spec)
    if not settings.localize:
        return "", {}
    graph, why = localization_graphs(state, backend)
    if graph is None:
        return f"  localization: {why}", {"skipped": why}
    feed = feed if feed is not None else {k: v for k, v in state.samples[sample_idx]["inputs"].items()}
    tol = _tolerance(state, backend)
    tolerance = Tolerance(tol["atol"], tol["rtol"])
    lines, entry = [], {"sample": sample_idx, "graph": str(graph)}
    if str(spec.reference_for(backend)) == "pytorch" and spec.export_mode != "none":
        result = localize(graph, feed, state.model, tolerance, input_names=spec.input_names,
                          chunk_size=settings.chunk_size)
        lines.append(f"  localization on sample {sample_idx} against pytorch: {result.message()}")
        entry["pytorch"] = result.to_dict()
    if backend.policy_name in ("fp16", "int8"):
        result = localize_against_onnx(graph, feed, state.onnx.path, tolerance, settings.chunk_size)
        lines.append(f"  localization on sample {sample_idx} against the fp32 graph: {result.message()}")
        entry["fp32_graph"] = result.to_dict()
    return "\n".join(lines), entry


def _safe_localize(state, backend, sample_idx, feed=None) -> tuple[str, dict]:
    """Localization helps explain a failure; its own failure must not hide the one it explains."""
    try:
        return localize_sample(state, backend, sample_idx, feed)
    except Exception as exc:  # noqa: BLE001  (reported, never raised)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = f"localization failed: {type(exc).__name__}: {first}"
        return f"  {why}", {"error": why}


def verification_localization(state, backend, sample_idx: int, case) -> str:
    """For a failed test_verification case: the localization of its inputs, as lines to append (and kept in
    the report's ``verification.localization`` of the backend, by case)."""
    feed = state.case_inputs(sample_idx, case)
    message, entry = _safe_localize(state, backend, sample_idx, feed)
    if entry:
        with state.store._lock:
            ver = state.store.backend(state.spec.name, str(backend)).setdefault("verification", {})
            ver.setdefault("localization", {})[f"sample{sample_idx}-{case.id}"] = entry
    return "\n" + message if message else ""


def worst_failing_samples(state, backend) -> list[int]:
    """The worst failing sample of each output that disagrees: what the fp32-islands search runs on."""
    worst = (_worst_failing(v.summary) for v in agreement_of(state).verdicts(backend).values() if not v.passed)
    return list(dict.fromkeys(w for w in worst if w is not None))


def agreement_failure(state, backend) -> str:
    """Judge ``backend``'s agreement over the evaluated samples, store it in the report (worst samples,
    localization) and return the failure message ('' when it agrees)."""
    return agreement_outcome(state, backend)[0]


def agreement_outcome(state, backend) -> tuple[str, str]:
    """``agreement_failure``'s judgement as (failure message, nothing-compared reason): the reason is set when
    every output passed without comparing anything (detection outputs with no detection on either side), so
    the test skips with it instead of claiming agreement; both '' when the backend agrees on something."""
    spec = state.spec
    verdicts = agreement_of(state).verdicts(backend)
    report, failures, localized = {}, [], {}
    for name, verdict in verdicts.items():
        report[name] = {"passed": verdict.passed, **verdict.summary}
        if verdict.nothing_compared:
            report[name]["nothing_compared"] = verdict.nothing_compared
        if verdict.passed:
            continue
        text = f"spec {spec.name}: {verdict.message}"
        worst = _worst_failing(verdict.summary)
        if worst is not None:
            if worst not in localized:
                localized[worst] = _safe_localize(state, backend, worst)
            message, entry = localized[worst]
            if message:
                text += "\n" + message
            if entry:
                report[name]["localization"] = entry
        failures.append(text)
    _store(state, backend, {"passed": not failures, "limit": str(agreement_of(state).settings.limit(
        backend.policy_name)), "outputs": report})
    empty = ""
    if verdicts and all(v.passed and v.nothing_compared for v in verdicts.values()):
        empty = f"spec {spec.name}: " + "; ".join(v.nothing_compared for v in verdicts.values())
    return "\n".join(f for f in failures if f), empty


def _store(state, backend, entry: dict):
    store = state.store
    with store._lock:  # the store's own lock: xdist merges backends' entries key by key
        store.backend(state.spec.name, str(backend))["agreement"] = entry


# -- collection -------------------------------------------------------------------------------------------
def agreement_params(spec, test_name: str) -> tuple[list, str]:
    """(backends, '') for ``test_agreement`` / ``test_batch_invariance``, or ([], the reason for one skip).
    Validates the agreement keys, so a bad one is a collection error naming it."""
    if spec.export_mode == "none":
        return [], "export.mode='none': the given ONNX has no PyTorch reference to verify against"
    if not spec.cfg["export"]["verify"]:
        return [], "export.verify=False in the spec"
    agreement_settings(spec)
    targets = [b for b in spec.verify_targets() if str(spec.reference_for(b)) != str(b)]
    if not targets:
        return [], f"no backend besides the reference '{spec.reference}' under test"
    if test_name == "test_agreement":
        if not spec.cfg["evaluation"]["enabled"]:
            return [], ("evaluation.enabled=False in the spec: no evaluated samples to verify "
                        "(test_verification checks verification.num_samples)")
        return targets, ""
    if spec.cfg["pipeline"]["stages"]:
        return [], "a pipeline's host code feeds its stages one sample at a time: no batch to split"
    if max_batch(spec) < 2:
        return [], "the graph's batch axis is not dynamic (onnx_config.dynamic_axes / model_inputs): nothing to batch"
    return targets, ""


def max_batch(spec, want: int = 4) -> int:
    """How many samples a batch may hold: the declared max batch, else ``want`` when axis 0 is dynamic."""
    from ..cases import _batch_dynamic

    declared = [i for i in spec.inputs if i.min_shape and i.max_shape]
    if declared:
        return min(want, min(i.max_shape[0] for i in declared))
    return want if _batch_dynamic(spec) else 1


def batch_invariance_failure(state, backend) -> str:
    """Run the first samples alone and as one batch on ``backend``; store the per-output agreement in the
    report and return the failure message ('' when every sample gets its own outputs from the batch)."""
    import numpy as np

    from .streaming import batch_invariance

    spec = state.spec
    first = state.samples[0]["inputs"]
    feeds = []
    for i in range(min(max_batch(spec), len(state.samples))):
        feed = {n: np.asarray(v) for n, v in state.samples[i]["inputs"].items()}
        if all(feed[n].shape[1:] == np.shape(first[n])[1:] for n in feed):  # same sample shape: stackable
            feeds.append(feed)
    if len(feeds) < 2:
        return ""
    tol = _tolerance(state, backend)
    criterion = Criterion(tol["atol"], tol["rtol"], tol.get("min_cosine"))
    accs = batch_invariance(lambda feed: state.infer(backend, feed, "batch invariance"), feeds, criterion)
    verdicts = {name: acc.verdict() for name, acc in accs.items()}
    with state.store._lock:
        state.store.backend(spec.name, str(backend))["batch_invariance"] = {
            "batch": len(feeds), "passed": all(v.passed for v in verdicts.values()),
            "outputs": {n: v.summary for n, v in verdicts.items()}}
    return "\n".join(f"spec {spec.name}, backend {backend}: {v.message}" for v in verdicts.values() if not v.passed)
