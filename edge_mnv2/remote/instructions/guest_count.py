"""Run one model with one runtime inside an emulated board's Python, bracketing each counted inference
with the markers the instruction-counting plugin watches.

This file runs on the device's Python (aarch64 under qemu-user), where edge-mnv2 is not installed: it
imports only the standard library, numpy and the runtime under test. Every runtime runs on one thread.
Usage: ``python guest_count.py RUNTIME MODEL INPUT.npy OUTPUT.npy --warmup 1 --runs 3 --marker-fd N
[--per-kernel NAMES.json]``; with ``--per-kernel`` (TVM, a bytecode build), one more run marks each
kernel the Relax VM calls, and the kernels' names go to NAMES.json in the order of their regions.
"""

import argparse
import json
import os

import numpy as np

BEGIN, END = 1, 2


def marker(fd: int, tag: int) -> None:
    """An lseek on a file descriptor no process has: the plugin sees the syscall, the kernel says EBADF."""
    try:
        os.lseek(fd, tag, 0)
    except OSError:
        pass


def tvm_runner(model: str, x: np.ndarray):
    """TVM's runtime (the same library the RPC server loads), through the Relax VM, as the RPC bench runs it."""
    import tvm
    from tvm.runtime.vm import VirtualMachine

    dev = tvm.cpu()
    vm = VirtualMachine(tvm.runtime.load_module(model), dev)
    vm.set_input("main", tvm.runtime.tensor(x, dev))

    def output() -> np.ndarray:
        out = vm.get_outputs("main")
        return (out if hasattr(out, "numpy") else out[0]).numpy()

    return lambda: vm.invoke_stateful("main"), output


def tvm_kernel_run(model: str, x: np.ndarray, fd: int) -> list:
    """Run ``model`` once through the Relax VM with a marked region around each kernel call (the VM's
    own builtins, ``vm.*``, are not marked); returns the kernels' names in call order. A build whose VM
    is compiled to machine code calls its kernels directly, so none are seen: build with the bytecode VM."""
    import tvm
    from tvm.runtime.vm import VirtualMachine

    dev = tvm.cpu()
    vm = VirtualMachine(tvm.runtime.load_module(model), dev)
    vm.set_input("main", tvm.runtime.tensor(x, dev))
    vm.invoke_stateful("main")  # first-run work outside the marks
    names = []

    def instrument(func, name, before, ret, *args):
        if name.startswith("vm."):
            return 0
        if before:
            names.append(name)
            marker(fd, BEGIN)
        else:
            marker(fd, END)
        return 0

    vm.set_instrument(instrument)
    vm.invoke_stateful("main")
    return names


def onnxruntime_runner(model: str, x: np.ndarray):
    """ONNX Runtime's CPU provider, one intra-op and one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    result = {}

    def run() -> None:
        result["y"] = session.run(None, {name: x})[0]

    return run, lambda: result["y"]


def litert_runner(model: str, x: np.ndarray, xnnpack: bool):
    """LiteRT's interpreter: with its default delegate (XNNPACK) or with its built-in kernels only."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interpreter = Interpreter(model_path=model, num_threads=1, **kwargs)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    out = interpreter.get_output_details()[0]["index"]
    return interpreter.invoke, lambda: interpreter.get_tensor(out)


RUNNERS = {
    "tvm": tvm_runner,
    "onnxruntime": onnxruntime_runner,
    "litert_xnnpack": lambda model, x: litert_runner(model, x, xnnpack=True),
    "litert_builtin": lambda model, x: litert_runner(model, x, xnnpack=False),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runtime", choices=sorted(RUNNERS))
    parser.add_argument("model")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--marker-fd", type=int, required=True)
    parser.add_argument("--per-kernel")
    args = parser.parse_args()
    x = np.ascontiguousarray(np.load(args.input), dtype=np.float32)
    run, output = RUNNERS[args.runtime](args.model, x)
    # An empty region first: what the markers and the Python call around a run cost (about 7,000
    # instructions), which the host subtracts from every counted run.
    marker(args.marker_fd, BEGIN)
    (lambda: None)()
    marker(args.marker_fd, END)
    for _ in range(args.warmup):  # first-run work (allocation, packing weights) is not per-inference work
        run()
    for _ in range(args.runs):
        marker(args.marker_fd, BEGIN)
        run()
        marker(args.marker_fd, END)
    np.save(args.output, output())
    if args.per_kernel:
        with open(args.per_kernel, "w") as f:
            json.dump(tvm_kernel_run(args.model, x, args.marker_fd), f)


if __name__ == "__main__":
    main()
