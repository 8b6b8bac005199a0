"""The int8 model as a static schedule of edge-mnv2's kernels (``firmware/nn``), with its memory plan.

A quantized classifier (:class:`edge_mnv2.quantize.ptq.QuantizedModel`) becomes a list of steps over
NHWC int8 tensors, each one call of the kernel library. Three things keep RAM small:

* **the input is quantized in place**: the firmware's uint8 image buffer becomes the int8 input tensor
  (a 256-entry table per channel), so no float copy of the image exists;
* **in-place depthwise convolutions**: a depthwise layer whose input dies with it writes its output over
  its input, its rows passing through a ring of three;
* **row streaming**: a pointwise expansion feeding a depthwise layer is computed a row at a time into
  that ring, so the expanded tensor (the largest of each block) never exists whole.

The arena is planned over the whole graph with those reuses (:func:`edge_mnv2.micro.planner.place`),
and :func:`memory_savings` says what each one gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_mnv2.errors import CompileError
from edge_mnv2.micro.planner import ArenaPlan, place

STEM, POINTWISE, DEPTHWISE, ADD, POOL, DENSE = "conv", "pointwise", "depthwise", "add", "pool", "dense"


@dataclass
class Tensor:
    """An int8 activation ``[H, W, C]`` (``[C]`` after pooling)."""

    id: int
    shape: tuple[int, ...]
    name: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Step:
    """One kernel call: ``kind`` with its layers' parameters, reading ``inputs``, writing ``output``."""

    kind: str
    name: str
    inputs: tuple[int, ...]
    output: int
    layer: object  # the QConv / QAdd / QPool / QDense
    expand: object = None  # a QConv 1x1 computed row by row into the ring (depthwise only)
    in_place: bool = False  # depthwise: output over input; add: output over inputs[1]
    macs: int = 0
    ring: int | None = None  # scratch tensor ids, planned in the arena
    scratch: int | None = None


@dataclass
class Int8Plan:
    tensors: list[Tensor]
    steps: list[Step]
    input_id: int = 0
    scratch_sizes: dict[int, int] = field(default_factory=dict)  # step-local tensors: bytes
    image_shape: tuple[int, int, int] = (0, 0, 0)  # H, W, C
    classes: int = 0

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)


def build_int8_plan(
    model, input_shape: tuple[int, int, int, int], *, stream: bool = True, in_place: bool = True
) -> Int8Plan:
    """The steps of ``model`` (a QuantizedModel) for a ``(1, C, H, W)`` input."""
    from edge_mnv2.quantize.ptq import QAdd, QConv, QDense, QPool

    _, c, h, w = input_shape
    tensors = [Tensor(0, (h, w, c), "input")]
    ids = {0: 0}
    consumers: dict[int, list] = {}
    for layer in model.layers:
        for src in (layer.a, layer.b) if isinstance(layer, QAdd) else (layer.src,):
            consumers.setdefault(src, []).append(layer)
    steps: list[Step] = []
    fused: set[int] = set()  # ids of QConv 1x1 layers computed inside the next depthwise step

    def new(shape, name) -> int:
        tensors.append(Tensor(len(tensors), tuple(int(s) for s in shape), name))
        return len(tensors) - 1

    block = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, QConv):
            hh, ww, cin = tensors[ids[layer.src]].shape
            cout, _, k, _ = layer.weight.shape
            oh, ow = (hh + 2 * layer.padding - k) // layer.stride + 1, (ww + 2 * layer.padding - k) // layer.stride + 1
            if layer.groups == 1 and k == 1 and layer.stride == 1 and layer.padding == 0:
                nxt = consumers.get(layer.dst, [])
                if stream and len(nxt) == 1 and _is_depthwise(nxt[0]):
                    fused.add(id(layer))
                    ids[layer.dst] = ids[layer.src]  # the depthwise step reads the expansion's input
                    continue
                out = new((oh, ow, cout), f"t{layer.dst}")
                steps.append(
                    Step(
                        POINTWISE,
                        f"pointwise {cin}->{cout} {hh}x{ww}",
                        (ids[layer.src],),
                        out,
                        layer,
                        macs=oh * ow * cout * cin,
                    )
                )
            elif _is_depthwise(layer):
                block += 1
                src_id = ids[layer.src]
                expand = next((p for p in model.layers[:i] if id(p) in fused and p.dst == layer.src), None)
                if expand is not None:
                    cin_exp = expand.weight.shape[1]
                    name = f"expand+depthwise {cin_exp}->{cout} 3x3/{layer.stride} {hh}x{ww}"
                    macs = hh * ww * cout * cin_exp + oh * ow * cout * 9
                else:
                    name = f"depthwise {cout} 3x3/{layer.stride} {hh}x{ww}"
                    macs = oh * ow * cout * 9
                lives_on = len(consumers.get(layer.src, [])) > 1
                inplace = in_place and expand is None and not lives_on
                out = new((oh, ow, cout), f"t{layer.dst}")
                steps.append(Step(DEPTHWISE, name, (src_id,), out, layer, expand=expand, in_place=inplace, macs=macs))
            elif layer.groups == 1:
                out = new((oh, ow, cout), f"t{layer.dst}")
                steps.append(
                    Step(
                        STEM,
                        f"conv {cin}->{cout} {k}x{k}/{layer.stride} {hh}x{ww}",
                        (ids[layer.src],),
                        out,
                        layer,
                        macs=oh * ow * cout * cin * k * k,
                    )
                )
            else:
                raise CompileError(
                    f"layer {i}: grouped convolution with {layer.groups} groups and kernel {k} is "
                    "not supported by the microcontroller int8 kernels"
                )
            ids[layer.dst] = out
        elif isinstance(layer, QAdd):
            a, b = ids[layer.a], ids[layer.b]
            out = new(tensors[a].shape, f"t{layer.dst}")
            steps.append(
                Step(
                    ADD,
                    f"add {'x'.join(map(str, tensors[a].shape))}",
                    (a, b),
                    out,
                    layer,
                    in_place=in_place and len(consumers.get(layer.b, [])) == 1,
                )
            )
            ids[layer.dst] = out
        elif isinstance(layer, QPool):
            hh, ww, cc = tensors[ids[layer.src]].shape
            out = new((cc,), f"t{layer.dst}")
            steps.append(Step(POOL, f"average pool {hh}x{ww}x{cc}", (ids[layer.src],), out, layer))
            ids[layer.dst] = out
        elif isinstance(layer, QDense):
            cout, cin = layer.weight.shape
            out = new((cout,), "output")
            steps.append(Step(DENSE, f"dense {cin}->{cout}", (ids[layer.src],), out, layer, macs=cin * cout))
            ids[layer.dst] = out
        else:
            raise CompileError(
                f"layer {i}: {type(layer).__name__} is not supported by the microcontroller int8 kernels"
            )
    if not steps or steps[-1].kind != DENSE:
        raise CompileError("the int8 microcontroller path needs a classifier that ends in a dense layer")
    return Int8Plan(tensors, steps, 0, image_shape=(h, w, c), classes=int(steps[-1].layer.weight.shape[0]))


def _is_depthwise(layer) -> bool:
    return (
        getattr(layer, "groups", 1) > 1
        and layer.weight.shape[1] == 1
        and layer.weight.shape[2] == 3
        and layer.padding == 1
        and layer.groups == layer.weight.shape[0]
    )


def add_scratch(plan: Int8Plan, pw_scratch, dw_scratch, conv_scratch) -> None:
    """Give each step the scratch it needs (``*_scratch`` compute the library's sizes) as tensors of
    one step's lifetime: the depthwise ring and the kernels' working memory."""
    for step in plan.steps:
        need = 0
        if step.kind == POINTWISE:
            need = pw_scratch(step.layer.weight.shape[1])
        elif step.kind == STEM:
            need = conv_scratch(step.layer.weight.shape[2], step.layer.weight.shape[1])
        elif step.kind == DEPTHWISE:
            hh, ww, _ = plan.tensors[step.inputs[0]].shape
            channels = step.layer.weight.shape[0]
            need = dw_scratch(ww, channels)
            if step.expand is not None:
                need = max(need, pw_scratch(step.expand.weight.shape[1]))
            ring = len(plan.tensors) + len(plan.scratch_sizes)
            plan.scratch_sizes[ring] = 3 * ww * channels
            step.ring = ring
        if need:
            sid = len(plan.tensors) + len(plan.scratch_sizes)
            plan.scratch_sizes[sid] = need
            step.scratch = sid


def buffers(plan: Int8Plan) -> tuple[dict[int, int], dict[int, int], dict[int, tuple[int, int]]]:
    """``(buffer of each tensor, bytes of each buffer, lifetime of each buffer)``: in-place steps
    put their output in their input's buffer; the input image is not in the arena."""
    owner = {t.id: t.id for t in plan.tensors}
    for step in plan.steps:
        if step.in_place:
            owner[step.output] = owner[step.inputs[-1]]
    spans: dict[int, list[int]] = {}
    for index, step in enumerate(plan.steps):
        used = [owner[t] for t in (*step.inputs, step.output)] + [s for s in (step.ring, step.scratch) if s is not None]
        for b in used:
            spans.setdefault(b, [index, index])[1] = index
    spans.pop(owner[plan.input_id], None)
    spans.pop(owner[plan.steps[-1].output], None)  # the float logits go straight to the caller
    sizes: dict[int, int] = {}
    for t in plan.tensors:
        if owner[t.id] in spans:
            sizes[owner[t.id]] = max(sizes.get(owner[t.id], 0), t.nbytes)
    sizes.update({s: n for s, n in plan.scratch_sizes.items() if s in spans})
    return owner, sizes, {b: (a, z) for b, (a, z) in spans.items()}


def plan_memory(plan: Int8Plan) -> tuple[dict[int, int], ArenaPlan]:
    """``(buffer of each tensor, the arena plan over buffers)``."""
    owner, sizes, lifetimes = buffers(plan)
    return owner, place(sizes, lifetimes)


def memory_savings(model, input_shape, scratch_fns) -> dict[str, int]:
    """Bytes of RAM each saving gives, measured by planning without it (cumulative, in this order)."""
    arenas = []
    for stream, in_place in ((False, False), (False, True), (True, True)):
        plan = build_int8_plan(model, input_shape, stream=stream, in_place=in_place)
        add_scratch(plan, *scratch_fns)
        arenas.append(plan_memory(plan)[1].arena_bytes)
    _, c, h, w = input_shape
    return {
        "input_quantized_in_place": h * w * c * 4 + h * w * c,  # no float input, no int8 copy
        "in_place_depthwise_and_add": arenas[0] - arenas[1],
        "row_streamed_expansions": arenas[1] - arenas[2],
    }
