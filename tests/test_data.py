"""Sample prefetching: order, bounded look-ahead, errors at the right index."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.data import prefetched


class Recording:
    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at
        self.loaded = []
        self.lock = threading.Lock()

    def __getitem__(self, i):
        if i == self.fail_at:
            raise FileNotFoundError(f"sample {i} is gone")
        with self.lock:
            self.loaded.append(i)
        return {"i": i}


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 20), depth=st.integers(0, 4))
def test_yields_every_index_in_order(n, depth):
    got = [(i, s["i"]) for i, s in prefetched(Recording(n), range(n), depth)]
    assert got == [(i, i) for i in range(n)]


def test_look_ahead_is_bounded():
    data = Recording(100)
    it = prefetched(data, range(100), depth=2)
    next(it)
    threading.Event().wait(0.3)
    # one handed out, at most `depth` queued, one in the loader's hand
    assert len(data.loaded) <= 1 + 2 + 1
    it.close()


def test_loader_error_surfaces_at_its_index():
    seen = []
    with pytest.raises(FileNotFoundError, match="sample 3 is gone"):
        for i, _ in prefetched(Recording(10, fail_at=3), range(10), depth=2):
            seen.append(i)
    assert seen == [0, 1, 2]
