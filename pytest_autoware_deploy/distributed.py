"""pytest-xdist support: each spec's tests on one worker, devices per worker, one merged report.

- Scheduling: a spec module runs whole on one worker (xdist's LoadFileScheduling), so its export,
  runners and cached outputs are built once and its gate/latency tests see its own results.
  Artifacts two specs share are still exported once: the cache builds under a file lock.
- Devices: ``--deploy-devices cuda:0,cuda:1`` gives worker gwN the device N mod len; remote workers
  (``--tx ssh=HOST//id=NAME``, execnet) are mapped by name: ``--deploy-devices hostA-0=cuda:0,hostA-1=cuda:1``.
- CPU threads: each worker gets its share of the cores (torch and ONNX Runtime intra-op).
- Report: each worker sends its results to the controller (``workeroutput``), which merges
  them and writes one ``deploy_report.json`` per work dir.

Registered by the plugin only when pytest-xdist is installed (its hooks exist only then).
"""

from __future__ import annotations

import json
import os

from .errors import DeployError


def worker_index() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def device_for_worker(devices: list[str]) -> str | None:
    """This worker's device from ``--deploy-devices``: ``ID=DEVICE`` entries name workers by their xdist id
    (``--tx ssh=hostA//id=hostA-0``: each host's workers mapped onto that host's GPUs); plain entries are
    dealt round-robin to ``gwN`` workers. A named worker with no entry is an error, not device 0."""
    if not devices:
        return None
    named = dict(d.split("=", 1) for d in devices if "=" in d)
    plain = [d for d in devices if "=" not in d]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker in named:
        return named[worker]
    idx = worker_index()
    if plain and (idx is not None or not worker):
        return plain[(idx or 0) % len(plain)]
    if not worker:  # not under xdist: only named entries given
        return None
    raise DeployError(f"--deploy-devices: xdist worker {worker!r} has no device (entries: {', '.join(devices)}); "
                      f"name it as {worker}=DEVICE, or give plain devices for gwN workers")


def unmapped_workers(tx_specs: list[str], devices: list[str]) -> list[str]:
    """Controller side: the ``--tx ...//id=NAME`` workers ``device_for_worker`` would refuse (checked before any
    worker starts: a worker that fails to configure stalls xdist instead of failing the run)."""
    named = {d.split("=", 1)[0] for d in devices if "=" in d}
    has_plain = any("=" not in d for d in devices)
    out = []
    for tx in tx_specs or []:
        ids = [part[3:] for part in tx.split("//") if part.startswith("id=")]
        for worker in ids:
            if worker not in named and not (has_plain and worker.startswith("gw") and worker[2:].isdigit()):
                out.append(worker)
    return out


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
