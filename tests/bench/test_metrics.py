"""Output agreement and latency statistics."""

from __future__ import annotations

import numpy as np
import pytest

from edge_mnv2.bench.metrics import latency_stats, output_agreement


def _logits(rows, classes=10, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, classes)).astype(np.float32)


def test_identical_outputs():
    ref = _logits(8)
    acc = output_agreement(ref.copy(), ref)
    assert acc["num_images"] == 8
    assert acc["top1_agreement"] == 100.0
    assert acc["top5_overlap"] == 100.0
    assert acc["max_abs_error"] == 0.0
    assert acc["mean_abs_error"] == 0.0
    assert acc["mean_cosine_similarity"] == pytest.approx(1.0, abs=1e-12)


def test_one_of_four_argmax_differs():
    ref = np.array([[5, 4, 3, 2, 1, 0, -1, -2]] * 4, np.float32)
    dev = ref.copy()
    dev[2, 0], dev[2, 1] = 4.0, 5.0  # swap the top two classes of row 2: same top-5 set
    acc = output_agreement(dev, ref)
    assert acc["top1_agreement"] == 75.0
    assert acc["top5_overlap"] == 100.0
    assert acc["max_abs_error"] == pytest.approx(1.0)


def test_top5_overlap_three_of_five():
    ref = np.array([[10, 9, 8, 7, 6, 0, 0, 0, 0, 0]], np.float64)
    # Device top-5: classes 0, 1, 2 (shared) and 8, 9 (new); classes 3, 4 drop out.
    dev = np.array([[10, 9, 8, -5, -5, 0, 0, 0, 7, 6]], np.float64)
    acc = output_agreement(dev, ref)
    assert acc["top1_agreement"] == 100.0
    assert acc["top5_overlap"] == pytest.approx(60.0)


def test_top5_overlap_averaged_over_rows():
    ref = np.tile(np.array([10, 9, 8, 7, 6, 0, 0, 0, 0, 0], np.float64), (2, 1))
    dev = ref.copy()
    dev[1] = [0, 0, 0, 0, 0, 10, 9, 8, 7, 6]  # row 1 shares nothing
    acc = output_agreement(dev, ref)
    assert acc["top5_overlap"] == pytest.approx(50.0)
    assert acc["top1_agreement"] == pytest.approx(50.0)


def test_fewer_than_five_classes():
    ref = np.array([[3.0, 2.0, 1.0]])
    acc = output_agreement(ref[:, ::-1].copy(), ref)
    assert acc["top5_overlap"] == 100.0  # k = 3, same set
    assert acc["top1_agreement"] == 0.0


def test_max_abs_error_injected():
    ref = _logits(6, 1000)
    dev = ref.astype(np.float64).copy()
    dev[3, 417] += 2.5e-3
    dev[1, 7] -= 1e-3
    acc = output_agreement(dev, ref)
    assert acc["max_abs_error"] == pytest.approx(2.5e-3, rel=1e-9)
    assert acc["mean_abs_error"] == pytest.approx(3.5e-3 / 6000, rel=1e-6)
    assert acc["top1_agreement"] == 100.0


def test_cosine_similarity():
    ref = np.array([[1.0, 0.0], [1.0, 1.0]])
    dev = np.array([[0.0, 1.0], [2.0, 2.0]])
    acc = output_agreement(dev, ref)
    assert acc["mean_cosine_similarity"] == pytest.approx(0.5)  # (0 + 1) / 2


def test_accepts_extra_dimensions():
    ref = _logits(3, 1000).reshape(3, 1000, 1, 1)
    assert output_agreement(ref, ref.reshape(3, 1000))["top1_agreement"] == 100.0


@pytest.mark.parametrize("dev_shape, ref_shape", [((4, 10), (4, 11)), ((3, 10), (4, 10))])
def test_shape_mismatch(dev_shape, ref_shape):
    with pytest.raises(ValueError, match="shape"):
        output_agreement(np.zeros(dev_shape), np.zeros(ref_shape))


def test_latency_stats_known_samples():
    seconds = [0.004, 0.001, 0.003, 0.002, 0.010]
    stats = latency_stats(seconds)
    ms = np.array(seconds) * 1e3
    assert stats["samples"] == 5
    assert stats["median"] == pytest.approx(3.0)
    assert stats["min"] == pytest.approx(1.0)
    assert stats["max"] == pytest.approx(10.0)
    assert stats["mean"] == pytest.approx(4.0)
    assert stats["p90"] == pytest.approx(np.percentile(ms, 90))
    assert stats["p90"] == pytest.approx(7.6)  # linear interpolation between 4 and 10
    assert stats["std"] == pytest.approx(np.std(ms))
    assert stats["std"] == pytest.approx(np.sqrt(10.0))
    assert all(isinstance(v, float) for k, v in stats.items() if k != "samples")


def test_latency_stats_single_sample():
    stats = latency_stats([0.0125])
    assert stats["median"] == stats["p90"] == stats["min"] == stats["max"] == pytest.approx(12.5)
    assert stats["std"] == 0.0


def test_latency_stats_empty():
    with pytest.raises(ValueError):
        latency_stats([])
