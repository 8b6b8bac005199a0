"""TVM's tensor intrinsics are imported the cheap way wherever edge-mnv2 needs them."""

import subprocess
import sys

# Counts TVMScript's inspect.stack() calls (the slow part: one per parsed intrinsic, 110 of them) while a
# tuning log's records are made loadable, as compile does before applying a log.
PROBE = """
import inspect, sys
calls = []
real = inspect.stack
def counting(*args, **kwargs):
    calls.append(1)
    return real(*args, **kwargs)
inspect.stack = counting
from edge_mnv2.quantize.x86_intrinsics import register
register()
print("tvm.s_tir.tensor_intrin.cuda" in sys.modules, len(calls))
"""


def test_opening_a_log_parses_the_intrinsics_without_inspect_stack():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    all_imported, calls = out[0] == "True", int(out[1])
    assert all_imported  # the whole package, every intrinsic registered
    # only the VNNI intrinsic register() defines itself is parsed the usual way (two frames looked up)
    assert calls <= 4
