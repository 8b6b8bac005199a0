"""Write an int8 model directory that calls edge-mnv2's kernel library (``firmware/nn``, copied into it).

Same contract with the firmware as the TVM-generated float model (:mod:`edge_mnv2.micro.emit`):
``model.h``, ``model.c`` (``model_run``, ``model_preprocess_u8``), ``weights.bin`` + ``weights.S`` and
``model.json``; plus ``model_run_u8``, which quantizes the firmware's uint8 image in place and runs
the model on it (``MODEL_INPUT_IN_PLACE``), and a per-step tick count when built with ``MODEL_PROFILE``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_mnv2.micro.emit import (
    _PRELUDE,
    _WEIGHTS_S,
    MANIFEST,
    PROFILE_MACROS,
    InputFormat,
    ModelSources,
    _c_float,
    preprocess_c,
)
from edge_mnv2.micro.int8_plan import ADD, DENSE, DEPTHWISE, POINTWISE, POOL, STEM, Int8Plan
from edge_mnv2.micro.nn_library import library_files
from edge_mnv2.micro.planner import ALIGNMENT, ArenaPlan


class _Blob:
    """The constants, each aligned, in one read-only blob."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.index: dict[str, dict] = {}

    def add(self, name: str, array: np.ndarray) -> int:
        self.data.extend(b"\0" * (-len(self.data) % ALIGNMENT))
        offset = len(self.data)
        array = np.ascontiguousarray(array)
        self.data.extend(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
        self.index[name] = {
            "offset": offset,
            "bytes": int(array.nbytes),
            "shape": list(array.shape),
            "dtype": str(array.dtype),
        }
        return offset


def input_table(fmt: InputFormat, input_scale: float, channels: int) -> np.ndarray:
    """``lut[c][v]``: the int8 input for pixel value ``v`` of channel ``c``, computed with the same float32
    steps as the desktop reference (normalise, then ``quantize_input``)."""
    from edge_mnv2.quantize.ptq import quantize_input

    image = np.repeat(np.arange(256, dtype=np.uint8)[None, None, :, None], channels, axis=3)
    return np.ascontiguousarray(quantize_input(fmt.apply(image), input_scale)[0, :, 0, :])


def _conv_arrays(blob: _Blob, name: str, layer, weights: np.ndarray) -> dict[str, int]:
    return {
        "w": blob.add(f"{name}.weight", weights.astype(np.int8)),
        "bias": blob.add(f"{name}.bias", layer.bias.astype(np.int32)),
        "mult": blob.add(f"{name}.multiplier", layer.requant.multiplier.astype(np.int32)),
    }


def _qconv_struct(var: str, offs: dict[str, int], layer) -> str:
    return (
        f"static const mnv2_qconv {var} = {{W8({offs['w']}), W32({offs['bias']}), W32({offs['mult']}), "
        f"{layer.requant.shift}, {layer.lo}, {layer.hi}}};"
    )


def write_int8_model_dir(
    directory: Path,
    name: str,
    model,
    plan: Int8Plan,
    owner: dict[int, int],
    arena: ArenaPlan,
    fmt: InputFormat,
    implementation: str,
    savings: dict[str, int],
) -> ModelSources:
    """Write the model directory for ``plan`` (a quantized model's steps, its arena planned)."""
    directory.mkdir(parents=True, exist_ok=True)
    h, w, c = plan.image_shape
    blob = _Blob()
    lut = blob.add("input_table", input_table(fmt, model.input_scale, c))
    structs, calls = [], []

    def ref(tid: int) -> str:
        if tid == plan.input_id:
            return "x0"
        return f"A8({arena.offsets[owner[tid]]})"

    def scratch(step) -> str:
        return f"A8({arena.offsets[step.scratch]})" if step.scratch is not None else "0"

    for i, step in enumerate(plan.steps):
        layer, tag = step.layer, f"s{i}"
        src = ref(step.inputs[0])
        if step.kind == STEM:
            cout, cin, k, _ = layer.weight.shape
            ih, iw, _ = plan.tensors[step.inputs[0]].shape
            o = _conv_arrays(blob, tag, layer, layer.weight.transpose(0, 2, 3, 1))
            calls.append(
                f"mnv2_conv_s8({src}, {ih}, {iw}, {cin}, W8({o['w']}), {k}, {layer.stride}, {layer.padding}, "
                f"W32({o['bias']}), W32({o['mult']}), {layer.requant.shift}, {layer.lo}, {layer.hi}, "
                f"{cout}, {ref(step.output)}, {scratch(step)});"
            )
        elif step.kind == POINTWISE:
            cout, cin = layer.weight.shape[:2]
            ih, iw, _ = plan.tensors[step.inputs[0]].shape
            o = _conv_arrays(blob, tag, layer, layer.weight[:, :, 0, 0])
            calls.append(
                f"mnv2_pw_s8({src}, {ih * iw}, {cin}, W8({o['w']}), W32({o['bias']}), W32({o['mult']}), "
                f"{layer.requant.shift}, {layer.lo}, {layer.hi}, {cout}, {ref(step.output)}, "
                f"{scratch(step)});"
            )
        elif step.kind == DEPTHWISE:
            channels = layer.weight.shape[0]
            ih, iw, _ = plan.tensors[step.inputs[0]].shape
            o = _conv_arrays(blob, tag, layer, layer.weight[:, 0].transpose(1, 2, 0))
            structs.append(_qconv_struct(f"dw{i}", o, layer))
            expand, expand_cin = "0", 0
            if step.expand is not None:
                e = _conv_arrays(blob, f"{tag}.expand", step.expand, step.expand.weight[:, :, 0, 0])
                structs.append(_qconv_struct(f"ex{i}", e, step.expand))
                expand, expand_cin = f"&ex{i}", step.expand.weight.shape[1]
            calls.append(
                f"mnv2_dw_stream({src}, {ih}, {iw}, {channels}, {layer.stride}, {expand}, {expand_cin}, "
                f"&dw{i}, {ref(step.output)}, A8({arena.offsets[step.ring]}), {scratch(step)});"
            )
        elif step.kind == ADD:
            n = plan.tensors[step.output].nbytes
            calls.append(
                f"mnv2_add_s8({src}, {ref(step.inputs[1])}, {n}, {int(layer.requant_a.multiplier[0])}, "
                f"{int(layer.requant_b.multiplier[0])}, {layer.requant_a.shift}, {ref(step.output)});"
            )
        elif step.kind == POOL:
            ih, iw, channels = plan.tensors[step.inputs[0]].shape
            calls.append(
                f"mnv2_avgpool_s8({src}, {ih * iw}, {channels}, {int(layer.requant.multiplier[0])}, "
                f"{layer.requant.shift}, {ref(step.output)});"
            )
        elif step.kind == DENSE:
            cout, cin = layer.weight.shape
            wo = blob.add(f"{tag}.weight", layer.weight.astype(np.int8))
            bo = blob.add(f"{tag}.bias", layer.bias.astype(np.int32))
            so = blob.add(f"{tag}.scale", layer.out_scale.astype(np.float32))
            calls.append(
                f"mnv2_dense_s8({src}, {cin}, W8({wo}), W32({bo}), (const float *)(model_weights + {so}), "
                f"{cout}, output);"
            )
    data = bytes(blob.data)
    lines = [
        _PRELUDE,
        '#include "mnv2_graph.h"',
        '#include "model.h"',
        "",
        PROFILE_MACROS,
        "extern const uint8_t model_weights[];   /* weights.S */",
        f"static uint8_t model_arena[{max(arena.arena_bytes, ALIGNMENT)}] __attribute__((aligned({ALIGNMENT})));",
        "#define W8(off) ((const int8_t *)(model_weights + (off)))",
        "#define W32(off) ((const int32_t *)(const void *)(model_weights + (off)))",
        "#define A8(off) ((int8_t *)(model_arena + (off)))",
        "",
        *structs,
        "",
        "static int32_t run(const int8_t *x0, float *output)",
        "{",
        "  PROFILE_BEGIN();",
    ]
    for i, (call, step) in enumerate(zip(calls, plan.steps, strict=True)):
        lines += [f"  {call}   /* {step.name} */", f"  PROFILE_STEP({i + 1});"]
    lines += [
        "  return 0;",
        "}",
        "",
        "int32_t model_run_u8(uint8_t *image, float *output)",
        "{",
        "  PROFILE_BEGIN();",
        f"  mnv2_quantize_u8(image, {h * w * c}, {c}, W8({lut}));",
        "  PROFILE_STEP(0);",
        "  return run((const int8_t *)image, output);",
        "}",
        "",
        "int32_t model_run(const float *input, float *output)",
        "{",
        f"  static int8_t x0[{h * w * c}];",
        f"  const float scale = {_c_float(model.input_scale)};",
        f"  for (int32_t ch = 0; ch < {c}; ++ch)",
        f"    for (int32_t i = 0; i < {h * w}; ++i) {{",
        f"      float q = floorf(input[ch * {h * w} + i] / scale + 0.5f);",
        f"      x0[i * {c} + ch] = (int8_t)(q < -127.0f ? -127 : q > 127.0f ? 127 : (int32_t)q);",
        "    }",
        "  return run(x0, output);",
        "}",
        "",
        preprocess_c(fmt, c, h, w),
    ]
    model_c = "\n".join(lines)
    model_id = zlib.crc32(data, zlib.crc32(model_c.encode()))
    for path in library_files():  # the kernels travel with the model, and are part of its identity
        (directory / path.name).write_bytes(path.read_bytes())
        model_id = zlib.crc32(path.read_bytes(), model_id)
    (directory / "weights.bin").write_bytes(data)
    (directory / "weights.S").write_text(_WEIGHTS_S)
    (directory / "model.c").write_text(model_c)
    (directory / "model.h").write_text(_model_h(name, model_id, plan, arena.arena_bytes, len(data)))
    sources = ModelSources(
        directory=directory,
        model_id=model_id,
        kernels=len({s.kind for s in plan.steps}),
        calls=len(plan.steps),
        weight_bytes=len(data),
        arena_bytes=arena.arena_bytes,
        unshared_arena_bytes=arena.unshared_bytes,
        input_bytes=0,
        output_bytes=plan.classes * 4,
        image_bytes=h * w * c,
        kernel_stack_bytes=0,
    )
    steps = [{"name": "quantize input (in place)", "kind": "quantize", "macs": 0}]
    steps += [
        {
            "name": s.name,
            "kind": s.kind,
            "macs": int(s.macs),
            "output": plan.tensors[s.output].name,
            "in_place": s.in_place,
            "fused_expand": s.expand is not None,
        }
        for s in plan.steps
    ]
    manifest = {
        **sources.to_dict(),
        "model": name,
        "input_format": asdict(fmt),
        "runtime": "mnv2_nn",
        "implementation": implementation,
        "input_in_place": True,
        "macs": int(plan.macs),
        "input": {"shape": [1, c, h, w], "dtype": "float32"},
        "output": {"shape": [1, plan.classes], "dtype": "float32"},
        "steps": steps,
        "savings": savings,
        "arena": {
            f"buffer{b}": {"offset": off, "bytes": arena.sizes[b], "live": list(arena.lifetimes[b])}
            for b, off in sorted(arena.offsets.items(), key=lambda kv: kv[1])
        },
        "weights": blob.index,
    }
    manifest.pop("directory")
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return sources


def _model_h(name: str, model_id: int, plan: Int8Plan, arena_bytes: int, weight_bytes: int) -> str:
    h, w, c = plan.image_shape
    return f"""\
/* Generated by edge-mnv2; do not edit. The contract between the generated model and the firmware. */
#ifndef EDGE_MNV2_MODEL_H
#define EDGE_MNV2_MODEL_H
#include <stdint.h>

#define MODEL_NAME {json.dumps(name)}
#define MODEL_ID 0x{model_id:08x}u
#define MODEL_INPUT_H {h}
#define MODEL_INPUT_W {w}
#define MODEL_INPUT_C {c}
#define MODEL_INPUT_ELEMS ({c} * {h} * {w})
#define MODEL_OUTPUT_ELEMS {plan.classes}
#define MODEL_ARENA_BYTES {arena_bytes}
#define MODEL_WEIGHT_BYTES {weight_bytes}
/* int8: model_run_u8 quantizes the uint8 image where it lies; no float input buffer is needed */
#define MODEL_INPUT_IN_PLACE 1
/* per-step profile: the input quantization, then each kernel call */
#define MODEL_STEPS {len(plan.steps) + 1}

/* uint8 HWC image (MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C bytes) -> the model's float input */
void model_preprocess_u8(const uint8_t *hwc, float *input);
/* Runs the model on a float input; 0 on success. */
int32_t model_run(const float *input, float *output);
/* Runs the model on a uint8 HWC image, which it overwrites with the int8 input; 0 on success. */
int32_t model_run_u8(uint8_t *image, float *output);
#ifdef MODEL_PROFILE
extern uint32_t model_step_ticks[MODEL_STEPS];
#endif

#endif
"""
