"""The static execution plan of a fused Relax ``main``: kernel calls in order, tensors, constants.

After fusion (:func:`edge_mnv2.micro.lowering.fused_module`) a static-shape model's ``main`` is one
dataflow block of ``call_tir`` calls. Walking it gives everything a static executor needs: which
kernel runs when, on which tensors, and how long each intermediate tensor lives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edge_mnv2.errors import CompileError

INPUT, OUTPUT, ACTIVATION, CONSTANT = "input", "output", "activation", "constant"


@dataclass
class TensorInfo:
    """A tensor of the plan: the model input/output, an intermediate activation, or a constant."""

    id: int
    kind: str
    shape: tuple[int, ...]
    dtype: str
    name: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class KernelCall:
    """One step of the executor: ``kernel(*args)``, outputs last (destination-passing style)."""

    kernel: str
    args: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class ExecutionPlan:
    tensors: list[TensorInfo]
    calls: list[KernelCall]
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    input_id: int = 0
    output_id: int = -1

    def lifetimes(self) -> dict[int, tuple[int, int]]:
        """For each activation, the first and last call index it is live in (both inclusive)."""
        spans: dict[int, list[int]] = {}
        for step, call in enumerate(self.calls):
            for tid in (*call.args, *call.outputs):
                if self.tensors[tid].kind == ACTIVATION:
                    spans.setdefault(tid, [step, step])[1] = step
        return {tid: (a, b) for tid, (a, b) in spans.items()}

    @property
    def kernels(self) -> list[str]:
        """Distinct kernels, in first-use order."""
        return list(dict.fromkeys(call.kernel for call in self.calls))


def _tensor_type(ty, what: str) -> tuple[tuple[int, ...], str]:
    from tvm import relax

    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise CompileError(f"{what} is not a tensor of static shape; microcontroller builds need static shapes")
    try:
        shape = tuple(int(d) for d in ty.shape.values)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CompileError(f"{what} has a symbolic shape {ty.shape}; export with a fixed input size") from exc
    return shape, str(ty.dtype)


def _constant_array(const) -> np.ndarray:
    value = const.value
    return np.ascontiguousarray(value.numpy() if hasattr(value, "numpy") else np.asarray(value))


def build_plan(mod) -> ExecutionPlan:
    """The execution plan of a fused module's ``main`` (one input, one output)."""
    from tvm import ir

    main = mod["main"]
    if len(main.params) != 1:
        raise CompileError(f"microcontroller builds take one-input models; this one has {len(main.params)}")
    plan = ExecutionPlan(tensors=[], calls=[])
    ids: dict = {}

    def add(kind: str, shape, dtype: str, name: str) -> int:
        plan.tensors.append(TensorInfo(len(plan.tensors), kind, tuple(shape), dtype, name))
        return len(plan.tensors) - 1

    shape, dtype = _tensor_type(main.params[0].ty, "the model input")
    plan.input_id = ids[main.params[0]] = add(INPUT, shape, dtype, main.params[0].name)
    const_ids: dict = {}
    body = main.body
    for block in body.blocks:
        for binding in block.bindings:
            value = binding.value
            if not isinstance(value, ir.Call) or getattr(value.op, "name", "") != "relax.call_tir":
                op = getattr(value, "op", None)
                raise CompileError(
                    f"the fused model still has a {getattr(op, 'name', type(value).__name__)} step "
                    "that is not a TIR kernel; the microcontroller executor runs kernels only"
                )
            kernel = value.args[0].name_hint
            args = []
            for arg in value.args[1].fields:
                if isinstance(arg, ir.Var):
                    if arg not in ids:
                        raise CompileError(f"kernel {kernel} reads {arg.name}, which is not computed before it")
                    args.append(ids[arg])
                elif isinstance(arg, ir.GenericConst):
                    data = _constant_array(arg)
                    # equal constants (the 0 and 6 of every ReLU6, shared weights) are stored once
                    key = (data.dtype.str, data.shape, hashlib.sha1(data.tobytes()).hexdigest())
                    if key not in const_ids:
                        const_ids[key] = add(CONSTANT, data.shape, str(data.dtype), f"c{len(const_ids)}")
                        plan.constants[const_ids[key]] = np.ascontiguousarray(data)
                    args.append(const_ids[key])
                else:
                    raise CompileError(
                        f"kernel {kernel} takes a {type(arg).__name__} argument; only tensors "
                        "and constants are supported"
                    )
            shape, dtype = _tensor_type(binding.var.ty, f"the output of {kernel}")
            out = ids[binding.var] = add(ACTIVATION, shape, dtype, binding.var.name)
            plan.calls.append(KernelCall(kernel, tuple(args), (out,)))
    result = body.body
    if result not in ids:
        raise CompileError("the model's output is not computed by a kernel (an identity model?)")
    plan.output_id = ids[result]
    plan.tensors[plan.output_id].kind = OUTPUT
    return plan
