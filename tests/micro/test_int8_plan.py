"""The int8 microcontroller schedule (edge_mnv2.micro.int8_plan / int8_emit): which steps fuse or run in
place, the arena over the whole graph, the in-place input table, and the generated C on the host equal
to the integer reference bit for bit (portable kernels)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_mnv2.micro.emit import InputFormat
from edge_mnv2.micro.int8_plan import ADD, DEPTHWISE, POINTWISE, add_scratch, build_int8_plan, plan_memory

MODEL = "mobilenet_v2_0.35_96.shapes"
SHAPE = (1, 3, 96, 96)
HOST_SCRATCH = (lambda cin: 4 * cin, lambda w, c: 2 * w * c, lambda k, cin: 64)


@pytest.fixture(scope="module")
def quantized():
    from edge_mnv2.models import create_model
    from edge_mnv2.quantize import ptq
    from edge_mnv2.quantize.graph import layer_graph

    layers = layer_graph(create_model(MODEL).eval())
    images = np.random.default_rng(0).standard_normal((8, *SHAPE[1:])).astype(np.float32)
    return ptq.quantize(layers, ptq.calibrate(layers, images))


def test_expansions_feed_their_depthwise_by_rows_and_depthwise_layers_without_one_run_in_place(quantized):
    plan = build_int8_plan(quantized, SHAPE)
    dws = [s for s in plan.steps if s.kind == DEPTHWISE]
    assert len(dws) == 17
    assert [s.expand is None for s in dws] == [True] + [False] * 16  # block 1 has no expansion (t = 1)
    assert dws[0].in_place and not any(s.in_place for s in dws[1:])
    # a fused step reads the expansion's input; the expanded tensor is no tensor of the plan
    expansions = {id(s.expand) for s in dws[1:]}
    for step in dws[1:]:
        assert plan.tensors[step.inputs[0]].shape[2] == step.expand.weight.shape[1]
    assert not any(id(s.layer) in expansions for s in plan.steps if s.kind == POINTWISE)
    assert sum(s.kind == POINTWISE for s in plan.steps) == 52 - 16 - 17 - 1  # 1x1 convs left
    assert all(s.in_place for s in plan.steps if s.kind == ADD) and sum(s.kind == ADD for s in plan.steps) == 10
    assert plan.macs == 10_666_928  # the model's multiply-adds


def test_the_arena_reuses_memory_and_each_saving_is_counted(quantized):
    from edge_mnv2.micro.int8_plan import memory_savings

    plan = build_int8_plan(quantized, SHAPE)
    add_scratch(plan, *HOST_SCRATCH)
    owner, arena = plan_memory(plan)
    assert not arena.overlaps()
    # the largest tensor of the network, the 48x48x48 expansion (110,592 B), never exists
    assert arena.arena_bytes < 48 * 48 * 48
    assert arena.arena_bytes < arena.unshared_bytes / 5
    savings = memory_savings(quantized, SHAPE, HOST_SCRATCH)
    assert savings["input_quantized_in_place"] == 96 * 96 * 3 * 5  # float input + int8 copy
    assert savings["row_streamed_expansions"] > 48 * 48 * 48 / 2
    assert savings["in_place_depthwise_and_add"] > 0
    # an in-place step's output shares its input's buffer; the residual's other input lives on
    for step in plan.steps:
        if step.in_place:
            assert owner[step.output] == owner[step.inputs[-1]]


def test_the_input_table_gives_the_reference_quantization_of_every_pixel_value(quantized):
    from edge_mnv2.micro.int8_emit import input_table
    from edge_mnv2.quantize.ptq import quantize_input

    fmt = InputFormat(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    lut = input_table(fmt, quantized.input_scale, 3)
    image = np.random.default_rng(0).integers(0, 256, (1, 96, 96, 3), dtype=np.uint8)
    expected = quantize_input(fmt.apply(image), quantized.input_scale)[0].transpose(1, 2, 0)
    assert np.array_equal(lut[np.arange(3), image[0]], expected)
    assert lut.dtype == np.int8 and lut.shape == (3, 256)


def test_the_generated_model_on_the_host_equals_the_integer_reference(quantized, tmp_path):
    from edge_mnv2.micro.codegen import generate_int8_sources
    from edge_mnv2.micro.host import HostModel
    from edge_mnv2.quantize.ptq import run_integer

    sources, info = generate_int8_sources(
        quantized,
        SHAPE,
        MODEL,
        tmp_path / "model",
        None,
        ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    )
    assert info["implementation"] == "dsp" and sources.input_bytes == 0
    model_c = (tmp_path / "model" / "model.c").read_text()
    assert "mnv2_dw_stream" in model_c and "model_run_u8" in model_c
    host = HostModel(tmp_path / "model", build_dir=tmp_path / "host")  # the portable kernels
    images = np.random.default_rng(1).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    x = host.input_format.apply(images)
    outputs = np.concatenate([host.run(x[i : i + 1]) for i in range(3)])
    assert np.array_equal(outputs, run_integer(quantized, x))
