import json
import re

import numpy as np
import pytest

from edge_mnv2.targets import load_target
from edge_mnv2.tuning import library as schedule_library
from edge_mnv2.tuning.database import extract_tasks, open_database, top_records
from edge_mnv2.tuning.logs import META_FILE

from tuning_helpers import quick_tune, tiny_onnx


@pytest.fixture(scope="module")
def tiny_tasks(tmp_path_factory):
    """The tiny model's tasks as the host's log extracts them: channels-last, weights prepacked."""
    return extract_tasks(*_tiny_module(tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")), True)


def _postprocs(task):
    from tvm.s_tir import meta_schedule as ms

    context = ms.TuneContext(
        mod=task.dispatched[0],
        target=load_target("host").tvm_target(),
        space_generator="post-order-apply",
        search_strategy="evolutionary",
    )
    return context.space_generator.postprocs


def _shapes(func_text: str) -> list[list[int]]:
    signature = func_text.split("def main(")[1].split("):\n")[0]
    return [
        [int(v) for v in re.findall(r"T\.int64\((\d+)\)", buf)]
        for buf in re.findall(r"T\.Buffer\(\((.*?)\), \"float32\"\)", signature)
    ]


def _run(mod, inputs):
    import tvm

    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in inputs]
    tvm.compile(mod, target=load_target("host").tvm_target())["main"](*args)
    return args[-1].numpy()


def _depthwise(tasks):
    return [t for t in tasks if "group_conv2d_nhwc" in t.dispatched[0].script()]


def _pointwise(tasks):
    return [t for t in tasks if t not in _depthwise(tasks) and "conv2d_nhwc" in t.dispatched[0].script()]


def _check_candidates(task, expected_count: dict):
    """Every candidate of the task computes what its plain kernel computes, writing every output."""
    rng = np.random.default_rng(0)
    mod = task.dispatched[0]
    schedules = schedule_library.candidates(mod, _postprocs(task))
    assert len(schedules) == expected_count[_shapes(mod.script())[-1][-1]]
    inputs = [rng.standard_normal(s).astype("float32") for s in _shapes(mod.script())]
    inputs[-1][:] = np.nan  # the output: every element must be written
    expected = _run(mod, inputs)
    assert np.isfinite(expected).all() and np.ptp(expected) > 0
    for sch in schedules:
        np.testing.assert_allclose(_run(sch.mod, inputs), expected, rtol=1e-5, atol=1e-5)
        assert "T.parallel" in sch.mod.script() and "T.vectorized" in sch.mod.script()


def test_every_depthwise_variant_computes_what_the_plain_kernel_computes(tiny_tasks):
    depthwise = _depthwise(tiny_tasks)
    assert len(depthwise) == 2  # stride 1 and stride 2, 16 and 24 channels
    for task in depthwise:
        # 16 channels: tiles of up to 16 and up to 32 are both 16, one schedule; 24: tiles of 8 and 24
        _check_candidates(task, {16: 3, 24: 4})


def test_every_pointwise_variant_computes_what_the_plain_kernel_computes(tiny_tasks):
    pointwise = _pointwise(tiny_tasks)
    assert len(pointwise) == 2  # 8 -> 16 channels with a ReLU, 16 -> 24
    for task in pointwise:
        # 16x16 pixels: tiles of 8 or 4 pixels, split row-major or channel block first; every channel
        # tile comes out as all the channels (one 16-lane vector, three 8-lane ones)
        _check_candidates(task, {16: 4, 24: 4})


def test_a_task_that_is_not_a_depthwise_or_1x1_convolution_has_no_candidates(tiny_tasks):
    others = [t for t in tiny_tasks if t not in _depthwise(tiny_tasks) + _pointwise(tiny_tasks)]
    assert others  # the layout transposes
    for task in others:
        assert schedule_library.candidates(task.dispatched[0], _postprocs(task)) == []
    # and neither schedule takes the other's convolutions
    for task, wrong in (
        (_depthwise(tiny_tasks)[0], schedule_library.pointwise_nhwc),
        (_pointwise(tiny_tasks)[0], schedule_library.depthwise_nhwc),
    ):
        with pytest.raises(schedule_library.DoesNotFit):
            wrong(task.dispatched[0], 8, 16)


def test_every_task_has_the_default_rules_schedule_as_a_candidate(tiny_tasks):
    """The search starts from what a zero-trial build runs: each task's first fitting default rule,
    a candidate computing what the plain kernel computes."""
    from edge_mnv2.schedules.apply import default_schedules

    target = load_target("host").tvm_target()
    defaults = tuple(h for h in schedule_library.LIBRARY if h.name == "default_rules")
    rng = np.random.default_rng(1)
    for task in tiny_tasks:
        mod = task.dispatched[0]
        (sch,) = schedule_library.candidates(mod, _postprocs(task), defaults, target)
        assert schedule_library.candidates(mod, _postprocs(task), defaults) == []  # no target, no ISA: left out
        # the same schedule compile's default pass gives the kernel
        provenance = {}
        default_schedules(target, provenance, prepack=False)(mod)
        assert provenance["main"]["source"] == "rule"
        inputs = [rng.standard_normal(s).astype("float32") for s in _shapes(mod.script())]
        inputs[-1][:] = np.nan
        np.testing.assert_allclose(_run(sch.mod, inputs), _run(mod, inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "schedule, kernel",
    [(schedule_library.pointwise_nhwc, (1, 1, 16, 32)), (schedule_library.depthwise_nhwc, (3, 3, 1, 16))],
)
def test_an_integer_convolution_is_not_taken(schedule, kernel):
    import tvm
    from tvm import te, topi

    def conv(dtype, out_dtype):
        x = te.placeholder((1, 7, 7, 16), dtype, name="x")
        w = te.placeholder(kernel, dtype, name="w")
        if kernel[2] == 1:  # as Relax legalizes a depthwise convolution: a group convolution
            y = topi.nn.group_conv2d_nhwc(x, w, 1, 1, 1, 16, out_dtype=out_dtype)
        else:
            y = topi.nn.conv2d_nhwc(x, w, 1, 0, 1, out_dtype=out_dtype)
        return tvm.IRModule({"main": te.create_prim_func([x, w, y])})

    with pytest.raises(schedule_library.DoesNotFit, match="not a float32 convolution"):
        schedule(conv("int8", "int32"), 8, 16)  # the int8 build's kernels: 16-lane float tiles do not fit
    assert schedule(conv("float32", "float32"), 8, 16) is not None


def test_pointwise_tiles_are_whole_vectors_that_divide_the_channels(tiny_tasks):
    task = next(t for t in _pointwise(tiny_tasks) if _shapes(t.dispatched[0].script())[-1][-1] == 24)
    script = schedule_library.pointwise_nhwc(task.dispatched[0], pixel_tile=8, channel_tile=64).mod.script()
    # 24 channels: 16 does not divide them, so three unrolled 8-lane vectors; a row of 16 in tiles of 8
    assert "T.vectorized(T.int64(8))" in script and "T.unroll(T.int64(3))" in script
    assert "T.unroll(T.int64(8))" in script


def test_a_pixel_tile_that_no_divisor_of_the_row_comes_near_is_left_out(tmp_path):
    import torch

    path = tmp_path / "seven.onnx"  # a 1x1 convolution over a 7x7 map: rows divide into 1 or 7
    torch.onnx.export(
        torch.nn.Conv2d(16, 32, 1).eval(), (torch.randn(1, 16, 7, 7),), str(path), dynamo=False, opset_version=17
    )
    (task,) = _pointwise(extract_tasks(*_tiny_module(path), True))
    with pytest.raises(ValueError, match="no tile near 6 pixels divides a row of 7"):
        schedule_library.pointwise_nhwc(task.dispatched[0], pixel_tile=6, channel_tile=32)
    library = (
        schedule_library.HandSchedule(
            "pw",
            1,
            schedule_library.pointwise_nhwc,
            (dict(pixel_tile=6, channel_tile=32), dict(pixel_tile=8, channel_tile=32)),
        ),
    )
    (only,) = schedule_library.candidates(task.dispatched[0], _postprocs(task), library)  # 8 -> the whole row
    assert "T.unroll(T.int64(7))" in only.mod.script()


def test_channel_tiles_are_whole_vectors_that_divide_the_channels(tiny_tasks):
    (task,) = [t for t in _depthwise(tiny_tasks) if _shapes(t.dispatched[0].script())[0][-1] == 24]
    library = (
        schedule_library.HandSchedule(
            "dw",
            1,
            schedule_library.depthwise_nhwc,
            (dict(row_tile=8, channel_tile=16), dict(row_tile=8, channel_tile=32), dict(row_tile=8, channel_tile=8)),
        ),
    )
    # at most 16 lanes: 8 divides 24; at most 32: 24 does; at most 8: 8 again, the first schedule
    first, second = schedule_library.candidates(task.dispatched[0], _postprocs(task), library)
    assert "T.vectorized(T.int64(8))" in first.mod.script() and "T.vectorized(T.int64(24))" in second.mod.script()


@pytest.mark.slow
def test_tune_measures_each_library_version_once_into_the_log(tmp_path, monkeypatch):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    logs = tmp_path / "logs"
    first = quick_tune(str(model), load_target("host"), trials=8, log_root=logs)
    # two depthwise tasks, 3 and 4 distinct schedules, two pointwise, 4 each (see above), and each of the
    # six tasks' default-rule schedule where it is not one of those (both depthwise ones are): all
    # measured and counted as trials
    assert first.library == 15 + 4 and first.trials_after >= 19
    meta = json.loads((first.log / META_FILE).read_text())
    assert meta[schedule_library.LIBRARY_KEY] == schedule_library.versions()
    assert meta["runs"][-1][schedule_library.LIBRARY_KEY] == 19
    database = open_database(first.log)
    tasks = _depthwise(extract_tasks(*_tiny_module(model), True))
    # each depthwise task has its hand-written records (no sampling in their traces) beside the search's
    for task in tasks:
        traces = [str(r.trace) for r in top_records(database, task.dispatched[0], 1 << 30)]
        assert sum("sample_" not in t for t in traces) == {16: 3, 24: 4}[_shapes(task.dispatched[0].script())[0][-1]]

    # a run killed while measuring the library left no version in tuning.json: the rerun measures only
    # what the log does not hold yet (here: nothing)
    meta = json.loads((first.log / META_FILE).read_text())
    del meta[schedule_library.LIBRARY_KEY]
    (first.log / META_FILE).write_text(json.dumps(meta))
    resumed = quick_tune(str(model), load_target("host"), trials=first.trials_after + 1, log_root=logs)
    assert resumed.library == 0
    assert json.loads((first.log / META_FILE).read_text())[schedule_library.LIBRARY_KEY] == schedule_library.versions()

    again = quick_tune(str(model), load_target("host"), trials=resumed.trials_after + 4, log_root=logs)
    assert (
        again.library == 0
        and schedule_library.LIBRARY_KEY not in json.loads((again.log / META_FILE).read_text())["runs"][-1]
    )

    # depthwise bumped to a version with a new variant; pointwise given a new variant too, but at the
    # version the log holds: code changes that keep the version (a refactor) are not measured again
    newer = (
        schedule_library.HandSchedule(
            "depthwise_nhwc", 2, schedule_library.depthwise_nhwc, (dict(row_tile=2, channel_tile=8),)
        ),
        schedule_library.HandSchedule(
            "pointwise_nhwc", 1, schedule_library.pointwise_nhwc, (dict(pixel_tile=2, channel_tile=8),)
        ),
    )
    monkeypatch.setattr(schedule_library, "LIBRARY", newer)
    monkeypatch.setattr(schedule_library.measure_library, "__defaults__", (newer,))
    monkeypatch.setattr(schedule_library.versions, "__defaults__", (newer,))
    monkeypatch.setattr(schedule_library.pending, "__defaults__", (newer,))
    bumped = quick_tune(str(model), load_target("host"), trials=again.trials_after + 1, log_root=logs)
    assert bumped.library == 2  # only the schedule with a new version is measured: one variant, two tasks

    off = quick_tune(str(model), load_target("host"), trials=8, log_root=tmp_path / "off", schedule_library=False)
    assert off.library == 0 and schedule_library.LIBRARY_KEY not in json.loads((off.log / META_FILE).read_text())


def _tiny_module(model):
    from edge_mnv2.compile import relax_layout
    from edge_mnv2.compile.frontend import load_source, relax_module

    proto, _ = load_source(str(model))
    return relax_layout.convert(relax_module(proto), "NHWC"), load_target("host").tvm_target()
