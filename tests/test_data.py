"""Samples: prefetching (order, bounded look-ahead, errors at the right index) and generated inputs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.data import batch_inputs, prefetched


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


# -- generated inputs (a verification shape the data does not have) ---------------------------------
class _Names:
    """batch_inputs reads only the spec's input names."""

    input_names = ["points", "coors", "mask"]


def _samples(n=3):
    rng = np.random.default_rng(0)
    return [{"inputs": {"points": rng.standard_normal((1, 5, 4)).astype(np.float32),
                        "coors": rng.integers(40, 60, (1, 5, 3)).astype(np.int32),
                        "mask": np.array([[[True], [False], [True], [True], [False]]])}} for _ in range(n)]


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 40), start=st.integers(0, 5))
def test_generated_inputs_keep_dtype_and_integer_range(rows, start):
    """Another point count than the data's: integers stay integers within the data's range (valid indices),
    not standard normals cast to int (mostly 0 and -1); floats stay seeded normals."""
    samples = _samples()
    out = batch_inputs(_Names, samples, start, {"points": (1, rows, 4), "coors": (1, rows, 3), "mask": (1, rows, 1)})
    assert out["points"].dtype == np.float32 and out["points"].shape == (1, rows, 4)
    coors, mask = out["coors"], out["mask"]
    assert coors.dtype == np.int32 and coors.shape == (1, rows, 3) and mask.dtype == np.bool_
    lo, hi = int(samples[start % 3]["inputs"]["coors"].min()), int(samples[start % 3]["inputs"]["coors"].max())
    assert coors.min() >= lo and coors.max() <= hi
    if rows >= 20:
        assert len(np.unique(coors)) > 3 and mask.any() and not mask.all()
    again = batch_inputs(_Names, samples, start, {"points": (1, rows, 4), "coors": (1, rows, 3), "mask": (1, rows, 1)})
    assert all(np.array_equal(out[k], again[k]) for k in out)  # seeded: the same case gets the same inputs


def test_prefetched_closed_on_its_loader_thread_does_not_join_itself():
    """An abandoned generator can be finalized by the garbage collector on whichever thread runs then, the
    loader included: closing must not try to join the current thread."""
    errors = []

    class Samples:
        def __getitem__(self, i):
            if i == 2:  # on the loader thread, while the consumer holds the generator suspended
                try:
                    gen.close()
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    errors.append(exc)
            return i

    gen = prefetched(Samples(), range(6), depth=1)
    assert next(gen) == (0, 0)
    threading.Event().wait(1.0)  # the loader reaches index 2 (1 is queued, depth 1) and closes the generator
    assert errors == []
    assert gen.gi_frame is None  # closed
