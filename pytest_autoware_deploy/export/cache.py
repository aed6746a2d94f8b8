"""Content-addressed artifacts: a key hashes everything an export depends on; files land atomically.

A changed checkpoint at the same path, a changed model source file, changed spec sections or
a different torch/onnx version give a different key, so a stale export is never served.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock


def file_digest(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_key(parts: dict) -> str:
    """Stable sha256 of a JSON-able dict (sorted keys; tuples and Paths become lists and strings)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@contextmanager
def atomic_path(final: Path):
    """Yield a temporary path beside ``final``; on success it replaces ``final`` in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(final: Path, data: bytes):
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: Path, text: str):
    atomic_write_bytes(final, text.encode())


def read_meta(artifact: Path) -> dict:
    """The ``meta.json`` written beside a cached artifact (what its build recorded), read only."""
    return json.loads((Path(artifact).parent / "meta.json").read_text())


class ArtifactCache:
    """``<root>/<kind>/<key>/`` directories, each complete once its ``meta.json`` exists.

    Builders run under a file lock so concurrent sessions (pytest-xdist workers) export once. A
    complete entry is served without the lock: taking it rewrites the ``.lock`` file, and a warm run
    must only read (a read-only cache, shared or mounted, still serves; nothing's mtime moves).
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:24]

    def get_or_build(self, kind: str, key: str, filename: str, build, meta: dict, rebuild=False):
        """Return (path, built): ``build(tmp_path)`` writes the artifact when no complete entry exists.

        ``meta`` is written to ``meta.json`` after the build, so ``build`` may add to it (what the build
        observed); ``read_meta(path)`` gives it back on a later hit.
        """
        entry = self.entry(kind, key)
        target = entry / filename
        done = entry / "meta.json"
        if not rebuild and done.is_file() and target.is_file():  # meta.json is written last: complete
            return target, False
        entry.mkdir(parents=True, exist_ok=True)
        with FileLock(str(entry / ".lock")):
            if done.is_file() and target.is_file() and not rebuild:  # another process built it meanwhile
                return target, False
            if done.exists():
                done.unlink()
            with atomic_path(target) as tmp:
                build(tmp)
            atomic_write_text(done, json.dumps({"key": key, **meta}, indent=2, default=str))
            return target, True
