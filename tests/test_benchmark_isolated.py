"""benchmarks/isolated.py: each runtime computes the model's outputs, and is timed in its own process."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import isolated  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build_dir(small_artifact):
    return small_artifact.directory


def test_tvm_runs_each_new_input_and_matches_onnx_runtime(build_dir):
    tvm_run = isolated.build(isolated.Spec("tvm", build_dir / "model.so"))
    ort_run = isolated.build(isolated.Spec("onnxruntime", build_dir / "model.onnx", threads=2))
    rng = np.random.default_rng(0)
    first, second = (rng.standard_normal((1, 3, 96, 96)).astype("float32") for _ in range(2))
    out_first = tvm_run(first)
    out_second = tvm_run(second)  # the kept input tensor must take the new frame, not reuse the last
    np.testing.assert_allclose(out_first, ort_run(first), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(out_second, ort_run(second), rtol=1e-3, atol=1e-4)
    assert not np.allclose(out_first, out_second)


def test_measure_times_every_runtime_in_every_round(build_dir):
    specs = {
        "tvm": isolated.Spec("tvm", build_dir / "model.so"),
        "ort": isolated.Spec("onnxruntime", build_dir / "model.onnx"),
    }
    x = np.zeros((1, 3, 96, 96), "float32")
    samples = isolated.measure(specs, x, rounds=2, per_round=3, settle=0.0)
    assert {name: len(times) for name, times in samples.items()} == {"tvm": 6, "ort": 6}
    assert all(0 < t < 10 for times in samples.values() for t in times)
