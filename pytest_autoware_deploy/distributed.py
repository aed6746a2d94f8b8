"""pytest-xdist support: each spec's tests on one worker, devices per worker, one merged report.

- Scheduling: a spec module runs whole on one worker (xdist's LoadFileScheduling), so its export,
  runners and cached outputs are built once and its gate/latency tests see its own results.
  Artifacts two specs share are still exported once: the cache builds under a file lock.
- Devices: ``--deploy-devices cuda:0,cuda:1`` gives worker gwN the device N mod len.
- CPU threads: each worker gets its share of the cores (torch and ONNX Runtime intra-op).
- Report: each worker sends its results to the controller (``workeroutput``), which merges
  them and writes one ``deploy_report.json`` per work dir.

Registered by the plugin only when pytest-xdist is installed (its hooks exist only then).
"""

from __future__ import annotations

import json
import os


def worker_index() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def device_for_worker(devices: list[str]) -> str | None:
    if not devices:
        return None
    idx = worker_index()
    return devices[(idx or 0) % len(devices)]


def cpu_threads_per_worker() -> int | None:
    """Under xdist, each worker's share of the CPU cores (None otherwise: libraries decide).

    Without this every worker's torch and ONNX Runtime start one thread per core, and N workers
    on the same cores slow each other down many times over (ORT's spinning threads worst of all).
    """
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker_index() is None or not count.isdigit():
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(count)))


def is_worker(config) -> bool:
    return hasattr(config, "workerinput")


class XdistHooks:
    def __init__(self, session_getter):
        self._session = session_getter

    def pytest_xdist_make_scheduler(self, config, log):
        if not self._session(config).specs:
            return None
        from xdist.scheduler import LoadFileScheduling

        return LoadFileScheduling(config, log)

    def pytest_testnodedown(self, node, error):
        """Controller: fold a finished worker's results into the session's report store."""
        payload = getattr(node, "workeroutput", {}).get("deploy_report")
        if payload:
            data = json.loads(payload)
            self._session(node.config).store.merge(data["specs"], data["work_dirs"])


def send_to_controller(config, store):
    """Worker: hand the results to the controller instead of writing a partial report."""
    config.workeroutput["deploy_report"] = json.dumps({"specs": store.specs, "work_dirs": store.work_dirs},
                                                      default=str)
