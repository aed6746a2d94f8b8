"""Progress lines for long work (export, evaluation) that get past pytest's output capture.

pytest captures stdout/stderr of tests and fixtures; the plugin installs a writer that suspends
capture for one line, so a user watching a 10-minute evaluation sees it move. Lines are plain
(no carriage returns) so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

_writer = None


def set_writer(writer):
    """``writer(line)``; None restores plain stderr."""
    global _writer
    _writer = writer


def emit(line: str):
    if _writer is not None:
        _writer(line)
    else:
        print(line, file=sys.stderr, flush=True)


@contextmanager
def status(message: str):
    start = time.perf_counter()
    emit(f"[deploy] {message} ...")
    yield
    emit(f"[deploy] {message}: done in {time.perf_counter() - start:.1f}s")


def progress(iterable, total: int, desc: str, every_s: float = 2.0):
    """Yield from ``iterable``, emitting a line at start, every ``every_s`` seconds and at the end."""
    start = last = time.perf_counter()
    emit(f"[deploy] {desc}: 0/{total}")
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every_s and done < total:
            last = now
            emit(f"[deploy] {desc}: {done}/{total} ({100 * done / total:.0f}%, {done / (now - start):.1f}/s)")
    elapsed = time.perf_counter() - start
    emit(f"[deploy] {desc}: {done}/{total} done in {elapsed:.1f}s")
