import json
import re

import numpy as np
import pytest

from edge_mnv2 import tune, tune_library
from edge_mnv2.targets import load_target

from test_tune import tiny_onnx


@pytest.fixture(scope="module")
def tiny_tasks(tmp_path_factory):
    """The tiny model's tasks as the host's log extracts them: channels-last, weights prepacked."""
    return tune.extract_tasks(*_tiny_module(tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")), True)


def _postprocs(task):
    from tvm.s_tir import meta_schedule as ms

    context = ms.TuneContext(mod=task.dispatched[0], target=load_target("host").tvm_target(),
                             space_generator="post-order-apply", search_strategy="evolutionary")
    return context.space_generator.postprocs


def _shapes(func_text: str) -> list[list[int]]:
    signature = func_text.split("def main(")[1].split("):\n")[0]
    return [[int(v) for v in re.findall(r"T\.int64\((\d+)\)", buf)]
            for buf in re.findall(r"T\.Buffer\(\((.*?)\), \"float32\"\)", signature)]


def _run(mod, inputs):
    import tvm

    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in inputs]
    tvm.compile(mod, target=load_target("host").tvm_target())["main"](*args)
    return args[-1].numpy()


def _depthwise(tasks):
    return [t for t in tasks if "group_conv2d_nhwc" in t.dispatched[0].script()]


def test_every_variant_computes_what_the_plain_kernel_computes(tiny_tasks):
    depthwise = _depthwise(tiny_tasks)
    assert len(depthwise) == 2   # stride 1 and stride 2, 16 and 24 channels
    rng = np.random.default_rng(0)
    for task in depthwise:
        mod = task.dispatched[0]
        schedules = tune_library.candidates(mod, _postprocs(task))
        # 16 channels: tiles of up to 16 and up to 32 are both 16, one schedule; 24: tiles of 8 and 24
        assert len(schedules) == {16: 3, 24: 4}[_shapes(mod.script())[0][-1]]
        inputs = [rng.standard_normal(s).astype("float32") for s in _shapes(mod.script())]
        inputs[-1][:] = np.nan   # the output: every element must be written
        expected = _run(mod, inputs)
        assert np.isfinite(expected).all() and np.ptp(expected) > 0
        for sch in schedules:
            np.testing.assert_allclose(_run(sch.mod, inputs), expected, rtol=1e-5, atol=1e-5)
            assert "T.parallel" in sch.mod.script() and "T.vectorized" in sch.mod.script()


def test_a_task_that_is_not_a_depthwise_convolution_has_no_candidates(tiny_tasks):
    others = [t for t in tiny_tasks if t not in _depthwise(tiny_tasks)]
    assert any("conv2d" in t.task_name for t in others)   # the pointwise convolutions
    for task in others:
        assert tune_library.candidates(task.dispatched[0], _postprocs(task)) == []


def test_channel_tiles_are_whole_vectors_that_divide_the_channels(tiny_tasks):
    (task,) = [t for t in _depthwise(tiny_tasks) if _shapes(t.dispatched[0].script())[0][-1] == 24]
    library = (tune_library.HandSchedule("dw", 1, tune_library.depthwise_nhwc, (
        dict(row_tile=8, channel_tile=16), dict(row_tile=8, channel_tile=32), dict(row_tile=8, channel_tile=8))),)
    # at most 16 lanes: 8 divides 24; at most 32: 24 does; at most 8: 8 again, the first schedule
    first, second = tune_library.candidates(task.dispatched[0], _postprocs(task), library)
    assert "T.vectorized(T.int64(8))" in first.mod.script() and "T.vectorized(T.int64(24))" in second.mod.script()


@pytest.mark.slow
def test_tune_measures_each_library_version_once_into_the_log(tmp_path, monkeypatch):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    logs = tmp_path / "logs"
    first = tune.tune_model(str(model), load_target("host"), trials=8, log_root=logs)
    # two depthwise tasks, 3 and 4 distinct schedules (see above), all measured and counted as trials
    assert first.library == 7 and first.trials_after >= 8
    meta = json.loads((first.log / tune.META_FILE).read_text())
    assert meta[tune_library.LIBRARY_KEY] == tune_library.versions()
    assert meta["runs"][-1][tune_library.LIBRARY_KEY] == 7
    database = tune.open_database(first.log)
    tasks = _depthwise(tune.extract_tasks(*_tiny_module(model), True))
    # each depthwise task has its hand-written records (no sampling in their traces) beside the search's
    for task in tasks:
        traces = [str(r.trace) for r in tune.top_records(database, task.dispatched[0], 1 << 30)]
        assert sum("sample_" not in t for t in traces) == {16: 3, 24: 4}[_shapes(task.dispatched[0].script())[0][-1]]

    again = tune.tune_model(str(model), load_target("host"), trials=first.trials_after + 4, log_root=logs)
    assert again.library == 0 and tune_library.LIBRARY_KEY not in json.loads(
        (again.log / tune.META_FILE).read_text())["runs"][-1]

    newer = (tune_library.HandSchedule("depthwise_nhwc", 2, tune_library.depthwise_nhwc,
                                       (dict(row_tile=4, channel_tile=8),)),)
    monkeypatch.setattr(tune_library, "LIBRARY", newer)
    monkeypatch.setattr(tune_library.measure_library, "__defaults__", (newer,))
    monkeypatch.setattr(tune_library.versions, "__defaults__", (newer,))
    bumped = tune.tune_model(str(model), load_target("host"), trials=again.trials_after + 1, log_root=logs)
    assert bumped.library == 2   # a new version is measured: one variant, two tasks

    off = tune.tune_model(str(model), load_target("host"), trials=8, log_root=tmp_path / "off",
                          schedule_library=False)
    assert off.library == 0 and tune_library.LIBRARY_KEY not in json.loads((off.log / tune.META_FILE).read_text())


def _tiny_module(model):
    from edge_mnv2 import relax_layout
    from edge_mnv2.compile import load_source, relax_module

    proto, _ = load_source(str(model))
    return relax_layout.convert(relax_module(proto), "NHWC"), load_target("host").tvm_target()
