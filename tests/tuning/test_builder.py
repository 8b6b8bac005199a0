"""The tuning builder: candidates build into loadable libraries, in workers that outlive a round."""

import numpy as np
import pytest


def vector_add(n: int):
    import tvm
    from tvm import te

    a = te.placeholder((n,), "float32", name="a")
    b = te.compute((n,), lambda i: a[i] + 1.0, name="b")
    return tvm.IRModule({"main": te.create_prim_func([a, b])})


@pytest.mark.slow
def test_rounds_build_loadable_libraries_in_the_same_workers():
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from edge_mnv2.tuning.builder import persistent_builder

    builder = persistent_builder(timeout_sec=300, max_workers=1)
    target = tvm.target.Target("llvm")
    first = builder.build([ms.builder.BuilderInput(vector_add(16), target)])
    assert first[0].error_msg is None
    workers = {w._proc.pid for w in builder.pool._worker_map.values()}
    second = builder.build([ms.builder.BuilderInput(vector_add(32), target)])
    assert second[0].error_msg is None
    # LocalBuilder would have started (and warmed up) a new process for the second round
    assert {w._proc.pid for w in builder.pool._worker_map.values()} == workers
    # and the next tuning run of this process builds in them too
    again = persistent_builder(timeout_sec=300, max_workers=1)
    assert again.build([ms.builder.BuilderInput(vector_add(8), target)])[0].error_msg is None
    assert {w._proc.pid for w in again.pool._worker_map.values()} == workers

    lib = tvm.runtime.load_module(second[0].artifact_path)
    x = tvm.runtime.tensor(np.arange(32, dtype="float32"))
    y = tvm.runtime.tensor(np.zeros(32, dtype="float32"))
    lib["main"](x, y)
    np.testing.assert_array_equal(y.numpy(), np.arange(32, dtype="float32") + 1)


@pytest.mark.slow
def test_a_candidate_over_the_timeout_is_reported_not_raised():
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from edge_mnv2.tuning.builder import persistent_builder

    # the timeout covers the build alone (the worker's warm-up has none), and no build takes 1 ms
    builder = persistent_builder(timeout_sec=0.001, max_workers=1)
    results = builder.build([ms.builder.BuilderInput(vector_add(8), tvm.target.Target("llvm"))])
    assert results[0].artifact_path is None and "timed out" in results[0].error_msg


def test_the_cheap_stack_matches_inspect_stack():
    import inspect

    from edge_mnv2.compile.tensor_intrin import _frames

    def here():
        return _frames(), inspect.stack()

    cheap, full = here()
    assert [(f.filename, f.lineno, f.function) for f in cheap][:5] == [
        (f.filename, f.lineno, f.function) for f in full
    ][:5]
    assert cheap[0].code_context == full[0].code_context and cheap[0].function == "here"
    assert cheap[1].frame is full[1].frame


INTRINSICS_DIGEST = """
import hashlib, sys
if sys.argv[1] == "cheap":
    from edge_mnv2.tuning.builder import warm_up
    warm_up()
import tvm.s_tir.tensor_intrin
from tvm.s_tir import TensorIntrin
names = {v for m, mod in list(sys.modules.items()) if m.startswith("tvm.s_tir.tensor_intrin")
         for k, v in vars(mod).items() if k.endswith("_INTRIN") and isinstance(v, str)}
digest = hashlib.sha256()
for name in sorted(names):
    intrin = TensorIntrin.get(name, allow_missing=True)
    if intrin is not None:
        digest.update(f"{name}{intrin.desc}{intrin.impl}".encode())
print(len(names), digest.hexdigest())
"""


@pytest.mark.slow
def test_the_cheap_warm_up_parses_the_same_intrinsics():
    import subprocess
    import sys

    def digest(how):
        out = subprocess.run(
            [sys.executable, "-c", INTRINSICS_DIGEST, how], capture_output=True, text=True, check=True
        ).stdout.split()
        return int(out[0]), out[1]

    cheap = digest("cheap")
    assert cheap[0] > 100 and cheap == digest("inspect")


def test_a_cross_compiling_run_gets_workers_started_with_its_compiler(monkeypatch):
    from edge_mnv2.tuning import builder

    monkeypatch.setattr(builder, "_POOLS", {})
    monkeypatch.delenv("EDGE_MNV2_CROSS_CXX", raising=False)
    host = builder.persistent_builder(timeout_sec=60, max_workers=1).pool
    assert builder.persistent_builder(timeout_sec=60, max_workers=1).pool is host
    # workers read the cross compiler's name from the environment they were started in
    monkeypatch.setenv("EDGE_MNV2_CROSS_CXX", "aarch64-linux-gnu-g++")
    assert builder.persistent_builder(timeout_sec=60, max_workers=1).pool is not host
    builder.shutdown_pools()
    assert builder._POOLS == {}
