"""evaluate/shards.py and merge.py: shards partition the samples, the merge refuses broken shard sets, replays
records in index order, and checks the thresholds the sharded jobs skipped."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import DeployError, SpecError
from pytest_autoware_deploy.evaluate.shards import Shard, ShardRecorder, find_shards, merge_set, shard_file
from pytest_autoware_deploy import merge as merge_mod


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 200))))
def test_the_shards_of_a_run_partition_its_samples(args):
    count, n = args
    parts = [Shard.parse(f"{i}/{count}").indices(n) for i in range(1, count + 1)]
    flat = [i for part in parts for i in part]
    assert sorted(flat) == list(range(n)) and len(flat) == n
    assert all(part == sorted(part) for part in parts)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""])
def test_a_bad_shard_is_one_error_naming_the_key(text):
    with pytest.raises(SpecError, match=r"spec\.py: evaluation\.shard: expected 'I/N' with 1 <= I <= N"):
        Shard.parse(text, "spec.py")


def _write(root, labels, preds, count, which=None, artifact="a1", min_accuracy=None, spec_file="spec.py"):
    """Shard files of a 2-class classification 'run' over len(labels) samples."""
    n = len(labels)
    for index in which or range(1, count + 1):
        shard = Shard(index, count)
        header = {"spec": "s", "spec_file": spec_file, "backend": "onnx", "index": index, "count": count,
                  "num_samples": n, "artifact": artifact,
                  "evaluation": {"evaluator": "classification", "kwargs": {"num_classes": 2}},
                  "checks": {"min_accuracy": min_accuracy, "max_drop": None, "drop_reference": None,
                             "gate_max_drop": None}}
        rec = ShardRecorder(shard_file(root, "s", "onnx", shard), header)
        for i in shard.indices(n):
            logits = np.eye(2, dtype=np.float32)[preds[i]][None]
            rec.add(i, {"logits": logits}, np.array([labels[i]]))
        rec.close({"partial": True})


def test_merged_shards_give_the_single_runs_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 2, 31), rng.integers(0, 2, 31)
    _write(tmp_path, labels, preds, 3)
    (group,) = find_shards([tmp_path]).values()
    result = merge_set(group)
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (labels, preds), 1)
    assert result["confusion_matrix"] == cm.tolist() and result["num_samples"] == 31
    assert result["accuracy"] == pytest.approx(np.mean(labels == preds))


def test_a_missing_shard_is_refused_naming_it(tmp_path):
    _write(tmp_path, [0] * 9, [0] * 9, 3, which=[1, 3])
    (group,) = find_shards([tmp_path]).values()
    with pytest.raises(DeployError, match=r"s/onnx: shards \[2\] of 3 are missing"):
        merge_set(group)


def test_shards_of_different_exports_are_refused(tmp_path):
    _write(tmp_path / "job1", [0] * 9, [0] * 9, 2, which=[1], artifact="a1")
    _write(tmp_path / "job2", [0] * 9, [0] * 9, 2, which=[2], artifact="a2")
    (group,) = find_shards([tmp_path / "job1", tmp_path / "job2"]).values()
    with pytest.raises(DeployError, match=r"shard files disagree on artifact"):
        merge_set(group)


def test_shards_of_different_counts_are_refused(tmp_path):
    _write(tmp_path / "job1", [0] * 9, [0] * 9, 2, which=[1])
    _write(tmp_path / "job2", [0] * 9, [0] * 9, 3, which=[2, 3])
    (group,) = find_shards([tmp_path / "job1", tmp_path / "job2"]).values()
    with pytest.raises(DeployError, match=r"shard files disagree on count"):
        merge_set(group)


def test_no_shards_is_an_error_not_an_empty_pass(tmp_path):
    with pytest.raises(DeployError, match=r"no evaluation shard files"):
        find_shards([tmp_path])


def test_the_merge_command_fails_on_a_threshold_the_shards_skipped(tmp_path, capsys):
    labels = [0, 1] * 10
    preds = [0, 1] * 8 + [1, 0] * 2  # 16 of 20 right
    _write(tmp_path / "jobs", labels, preds, 2, min_accuracy=0.9)
    code = merge_mod.main([str(tmp_path / "jobs"), "--out", str(tmp_path / "merged")])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED s, backend onnx, 20 samples: accuracy 0.8000 < min_accuracy 0.9000" in captured.err
    assert (tmp_path / "merged" / "deploy_report.json").is_file()
    assert merge_mod.main([str(tmp_path / "nothing")]) == 2


def test_a_failed_evaluation_leaves_no_shard_file(tmp_path):
    header = {"spec": "s", "backend": "onnx"}
    rec = ShardRecorder(tmp_path / "x.shard-1-of-2.pkl", header)
    rec.add(0, {"y": np.zeros(2)}, 0)
    rec.abort()
    assert list(tmp_path.iterdir()) == []
