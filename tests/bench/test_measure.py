"""The pure helpers behind benchmarks/ (ordering, ratios, file-untouched checks, memory, tables)."""

from __future__ import annotations

import os
import sys

import pytest

from pytest_autoware_deploy.bench.measure import (abba_order, file_record, format_table, pair_ratios,
                                                  peak_rss_bytes, reset_peak_rss, rss_bytes, summarize,
                                                  tree_changes, tree_snapshot)


def test_abba_order_alternates_and_balances():
    assert abba_order(4, "p", "r") == ["p", "r", "r", "p", "p", "r", "r", "p"]
    order = abba_order(3)
    assert order.count("a") == order.count("b") == 3


def test_pair_ratios_and_summary():
    ratios = pair_ratios([1.0, 2.2, 3.3], [1.0, 2.0, 3.0])
    assert ratios == pytest.approx([1.0, 1.1, 1.1])
    s = summarize(ratios)
    assert s["median"] == pytest.approx(1.1) and s["min"] == 1.0 and s["n"] == 3
    with pytest.raises(ValueError):
        pair_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        summarize([])


def test_tree_changes_sees_content_mtime_added_and_removed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.onnx").write_bytes(b"graph")
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "gone").write_text("x")
    before = tree_snapshot(tmp_path)
    assert set(before) == {"a/model.onnx", "meta.json", "gone"}
    assert tree_changes(before, tree_snapshot(tmp_path)) == []

    (tmp_path / "a" / "model.onnx").write_bytes(b"GRAPH")           # same size, new bytes
    st = (tmp_path / "meta.json").stat()
    os.utime(tmp_path / "meta.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched only
    (tmp_path / "gone").unlink()
    (tmp_path / "new").write_text("y")
    changes = tree_changes(before, tree_snapshot(tmp_path))
    assert changes[0].startswith("a/model.onnx: sha256")  # its mtime may or may not have ticked
    assert changes[1:] == ["gone: removed", "meta.json: mtime_ns changed", "new: added"]
    assert file_record(tmp_path / "new")["size"] == 1


def test_format_table_pads_columns():
    text = format_table(["name", "x"], [["plugin", "1.000"], ["raw", "0.9"]])
    assert text.splitlines() == ["name    x", "------  -----", "plugin  1.000", "raw     0.9"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self is Linux's")
def test_peak_rss_reset_and_read():
    assert rss_bytes() > 0
    if not reset_peak_rss():
        pytest.skip("kernel without /proc/self/clear_refs peak reset")
    assert peak_rss_bytes() >= rss_bytes() * 0.9
