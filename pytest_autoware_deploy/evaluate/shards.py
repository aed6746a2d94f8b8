"""One spec's evaluation split across jobs (``--deploy-shard I/N``) and merged back (``autoware-deploy merge``).

A full T4 validation set on several backends outgrows one job; a CI matrix or several machines each run
shard ``I`` of ``N``: the samples ``i`` with ``i % N == I - 1`` (interleaved, so every shard sees every part
of the set). Each shard streams its per-sample results -- the evaluated index, the backend's outputs and the
target, exactly what ``evaluator.update`` consumed -- to one file per (spec, backend, shard), written
atomically. The merge replays every shard's records into a fresh evaluator in sample-index order, which is
the order a single run updates in, so the merged metrics equal one run's exactly. It refuses a shard set
that is incomplete, overlapping, of mixed ``N``, or evaluated on different artifacts.

The files are pickles (outputs and targets are dicts of numpy arrays, lists and scalars): read only shard
files your own jobs wrote.
"""

from __future__ import annotations

import heapq
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeployError, SpecError
from ..export.cache import atomic_path

FORMAT = "pytest-autoware-deploy/evaluation-shard/1"
SHARD_DIR = "shards"


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str, file=None, key: str = "evaluation.shard") -> "Shard":
        """``"I/N"`` with ``1 <= I <= N``; anything else is one SpecError naming ``key``."""
        head, sep, tail = str(text).strip().partition("/")
        if sep and head.strip().isdigit() and tail.strip().isdigit():
            shard = cls(int(head), int(tail))
            if 1 <= shard.index <= shard.count:
                return shard
        raise SpecError(file, key, f"expected 'I/N' with 1 <= I <= N (e.g. '2/3': the second of three shards), "
                        f"got {text!r}")

    def indices(self, n: int) -> list[int]:
        return list(range(self.index - 1, n, self.count))

    def __str__(self):
        return f"{self.index}/{self.count}"


def shard_file(work_dir, spec_name: str, backend: str, shard: Shard) -> Path:
    safe = backend.replace("@", "_at_").replace(":", "_")
    return Path(work_dir) / spec_name / SHARD_DIR / f"{safe}.shard-{shard.index}-of-{shard.count}.pkl"


class ShardRecorder:
    """Streams one backend's per-sample evaluation records of one shard to ``path`` (atomically on close):
    memory stays flat in the number of samples."""

    def __init__(self, path: Path, header: dict):
        self.path = Path(path)
        self.header = dict(header, format=FORMAT, indices=[])
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._body = open(self._tmp.with_suffix(".records"), "wb")

    def add(self, index: int, outputs: dict, target):
        pickle.dump((index, outputs, target), self._body, protocol=pickle.HIGHEST_PROTOCOL)
        self.header["indices"].append(index)

    def close(self, result: dict | None = None):
        """Write header (with the shard's own metrics) then the records; rename into place."""
        body = Path(self._body.name)
        self._body.close()
        try:
            with open(self._tmp, "wb") as out, open(body, "rb") as records:
                pickle.dump(dict(self.header, shard_result=result), out, protocol=pickle.HIGHEST_PROTOCOL)
                while chunk := records.read(1 << 20):
                    out.write(chunk)
            self._ctx.__exit__(None, None, None)
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        finally:
            body.unlink(missing_ok=True)

    def abort(self):
        body = Path(self._body.name)
        self._body.close()
        body.unlink(missing_ok=True)
        self._ctx.__exit__(DeployError, DeployError("aborted"), None)


def read_header(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            header = pickle.load(f)
        except Exception as exc:
            raise DeployError(f"{path}: not an evaluation shard file ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DeployError(f"{path}: not an evaluation shard file of format {FORMAT!r}")
    return header


def records(path: Path):
    """Yield ``(index, outputs, target)`` in the order the shard evaluated them (increasing index)."""
    with open(path, "rb") as f:
        pickle.load(f)  # header
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


@dataclass
class ShardSet:
    """All shard files of one (spec, backend)."""
    spec: str
    backend: str
    files: dict[int, Path] = field(default_factory=dict)
    headers: dict[int, dict] = field(default_factory=dict)

    def check(self) -> dict:
        """The common header; an incomplete, overlapping or inconsistent set is one DeployError naming files."""
        where = f"{self.spec}/{self.backend}"
        first = self.headers[min(self.headers)]
        for i, head in self.headers.items():
            for key in ("count", "num_samples", "artifact", "evaluation"):
                if head[key] != first[key]:
                    raise DeployError(f"{where}: shard files disagree on {key} ({self.files[min(self.headers)]}: "
                                      f"{first[key]!r}; {self.files[i]}: {head[key]!r}); merge shards of one run")
        missing = sorted(set(range(1, first["count"] + 1)) - set(self.headers))
        if missing:
            raise DeployError(f"{where}: shards {missing} of {first['count']} are missing (found "
                              f"{sorted(self.headers)} in {sorted({str(p.parent) for p in self.files.values()})})")
        seen: dict[int, int] = {}
        for i, head in sorted(self.headers.items()):
            for idx in head["indices"]:
                if idx in seen:
                    raise DeployError(f"{where}: sample {idx} is in shards {seen[idx]} and {i}")
                seen[idx] = i
        expected = set(range(first["num_samples"]))
        if set(seen) != expected:
            raise DeployError(f"{where}: the shards evaluated {len(seen)} of {first['num_samples']} samples "
                              f"(missing {sorted(expected - set(seen))[:10]})")
        return first


def find_shards(dirs) -> dict[tuple[str, str], ShardSet]:
    """Every shard file under ``dirs`` (searched recursively), grouped by (spec, backend)."""
    sets: dict[tuple[str, str], ShardSet] = {}
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise DeployError(f"{d}: no such directory")
        for path in sorted(d.rglob("*.shard-*-of-*.pkl")):
            head = read_header(path)
            key = (head["spec"], head["backend"])
            group = sets.setdefault(key, ShardSet(*key))
            if head["index"] in group.files and group.files[head["index"]].resolve() != path.resolve():
                raise DeployError(f"{key[0]}/{key[1]}: shard {head['index']}/{head['count']} found twice: "
                                  f"{group.files[head['index']]} and {path}")
            group.files[head["index"]] = path
            group.headers[head["index"]] = head
    if not sets:
        raise DeployError(f"no evaluation shard files (*.shard-I-of-N.pkl) under {', '.join(map(str, dirs))}; "
                          "run the spec with --deploy-shard I/N first")
    return sets


@dataclass
class EvaluationSource:
    """The parts of a spec an evaluator is made from (recorded in every shard's header)."""
    file: Path
    cfg: dict

    @property
    def dir(self) -> Path:
        return Path(self.file).parent


def merge_set(shard_set: ShardSet, figures_dir=None) -> dict:
    """The evaluation result of all shards together: records replayed in sample-index order (with the
    evaluator's figures in ``figures_dir`` when given)."""
    from .base import make_evaluator

    head = shard_set.check()
    evaluator = make_evaluator(EvaluationSource(Path(head["spec_file"]), {"evaluation": head["evaluation"]}))
    streams = [records(p) for _, p in sorted(shard_set.files.items())]
    for _, outputs, target in heapq.merge(*streams, key=lambda r: r[0]):
        evaluator.update(outputs, target)
    result = dict(evaluator.compute())
    result["primary_metric"] = evaluator.primary_metric
    result["merged_from"] = {"shards": head["count"], "files": [str(p) for _, p in sorted(shard_set.files.items())]}
    plot = getattr(evaluator, "plot", None)
    if figures_dir is not None and callable(plot):
        paths = plot(result, Path(figures_dir) / shard_set.spec / "figures", f"{shard_set.spec}/{shard_set.backend}")
        result["figures"] = [str(Path(p).relative_to(figures_dir)) for p in paths]
    return result
