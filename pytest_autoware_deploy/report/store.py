"""Results gathered during the session, in the layout of ``deploy_report.json``.

``{"specs": {spec: {"backends": {backend: {"verification": ..., "evaluation": ..., "latency_ms": ...}}}}}``
"""

from __future__ import annotations

import threading


class ReportStore:
    def __init__(self):
        self._lock = threading.Lock()
        self.specs: dict[str, dict] = {}
        self.work_dirs: dict[str, str] = {}

    def entry(self, spec_name: str) -> dict:
        """A spec's entry; ``"<spec>/<stage>"`` names a stage of a pipeline, kept under ``stages``."""
        parent, _, stage = spec_name.partition("/")
        entry = self.specs.setdefault(parent, {"backends": {}})
        if stage:
            entry = entry.setdefault("stages", {}).setdefault(stage, {"backends": {}})
        return entry

    def backend(self, spec_name: str, backend: str) -> dict:
        return self.entry(spec_name)["backends"].setdefault(backend, {})

    def set_spec_info(self, spec_name: str, work_dir, **info):
        with self._lock:
            self.entry(spec_name).update(info)
            if "/" not in spec_name:
                self.work_dirs[spec_name] = str(work_dir)

    def add_verification(self, spec_name, backend, output, case, stats, passed, message=""):
        """One (output, sample, shape) comparison; the output's entry keeps the worst statistics."""
        with self._lock:
            ver = self.backend(spec_name, backend).setdefault("verification", {"passed": True, "outputs": {},
                                                                              "cases": []})
            ver["passed"] = ver["passed"] and passed
            ver["cases"].append({"output": output, "case": case, "passed": passed, "message": message})
            if stats and "matched" in stats:  # a detection comparator's statistics (verify/detections.py)
                from ..verify.detections import merge_detection_stats

                merge_detection_stats(ver["outputs"].setdefault(output, {}), stats)
                return
            agg = ver["outputs"].setdefault(output, {"max_abs": 0.0, "mean_abs": 0.0, "max_rel": 0.0,
                                                     "cosine": 1.0, "nan": 0, "inf": 0, "cases": 0})
            if stats:
                agg["max_abs"] = max(agg["max_abs"], stats["max_abs"])
                agg["max_rel"] = max(agg["max_rel"], stats["max_rel"])
                agg["cosine"] = min(agg["cosine"], stats["cosine"])
                agg["mean_abs"] = (agg["mean_abs"] * agg["cases"] + stats["mean_abs"]) / (agg["cases"] + 1)
                agg["nan"] += stats["nan"]
                agg["inf"] += stats["inf"]
            agg["cases"] += 1

    def set_evaluation(self, spec_name, backend, result: dict):
        with self._lock:
            self.backend(spec_name, backend)["evaluation"] = result

    def set_latency(self, spec_name, backend, stats_ms: dict, e2e_ms: dict | None = None):
        with self._lock:
            body = self.backend(spec_name, backend)
            body["latency_ms"] = stats_ms
            if e2e_ms is not None:
                body["latency_e2e_ms"] = e2e_ms

    def set_phases(self, spec_name, backend, phases_ms: dict, host_memory: str | None = None):
        """trtexec-style split per phase: {"h2d": stats, "compute": stats, "d2h": stats}; ``host_memory``:
        whether the host side of the copies was pinned or pageable."""
        with self._lock:
            body = self.backend(spec_name, backend)
            body["latency_phases_ms"] = phases_ms
            if host_memory:
                body["host_memory"] = host_memory

    def note_backend(self, spec_name, backend, **facts):
        """Further facts about a backend's run (e.g. ``latency_cuda_graph_ms``), merged into its entry."""
        with self._lock:
            self.backend(spec_name, backend).update(facts)

    def set_throughput(self, spec_name, backend, batch: int, samples_per_s: float, stats_ms: dict):
        with self._lock:
            sweep = self.backend(spec_name, backend).setdefault("throughput", {})
            sweep[str(batch)] = {"samples_per_s": samples_per_s, "latency_ms": stats_ms}

    def merge(self, specs: dict, work_dirs: dict):
        """Fold another process's results in (pytest-xdist workers); backends of a spec are united."""
        with self._lock:
            for name, body in specs.items():
                _merge_entry(self.specs.setdefault(name, {"backends": {}}), body)
            self.work_dirs.update(work_dirs)

    def by_work_dir(self) -> dict[str, dict]:
        groups: dict[str, dict] = {}
        for name, body in self.specs.items():
            groups.setdefault(self.work_dirs.get(name, "."), {})[name] = body
        return groups


def _merge_entry(mine: dict, body: dict):
    for key, value in body.items():
        if key == "backends":
            for backend, result in value.items():
                mine.setdefault("backends", {}).setdefault(backend, {}).update(result)
        elif key == "stages":
            for stage, stage_body in value.items():
                _merge_entry(mine.setdefault("stages", {}).setdefault(stage, {"backends": {}}), stage_body)
        else:
            mine[key] = value
