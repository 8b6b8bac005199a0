"""TVM's tensor intrinsics, imported cheaply.

``tvm.s_tir.tensor_intrin`` parses 110 TVMScript intrinsics when first imported, and TVMScript calls
``inspect.stack()`` for each: 60-80 s on a quiet 2-core machine, paid by every process that applies a
tuning log (loading its records needs the intrinsics registered) and by every MetaSchedule build
worker. With ``inspect.stack()`` swapped for :func:`_frames` while they parse, the same intrinsics take
7-8 s.
"""

from __future__ import annotations

import sys


def _frames(context: int = 1) -> list:
    """``inspect.stack()`` without its per-frame ``getsourcefile``, which scans ``sys.modules`` each time:
    the same frames, file names, line numbers and one line of code context."""
    import inspect
    import linecache

    infos = []
    frame = sys._getframe(1)
    while frame is not None:
        name, line = frame.f_code.co_filename, frame.f_lineno
        text = linecache.getline(name, line) if context > 0 else ""
        infos.append(
            inspect.FrameInfo(frame, name, line, frame.f_code.co_name, [text] if text else None, 0 if text else None)
        )
        frame = frame.f_back
    return infos


def warm_up() -> None:
    """Import TVM's tensor intrinsics, which every candidate build needs, with TVMScript's
    ``inspect.stack()`` calls made cheap while they parse (no timeout applies to this)."""
    import inspect

    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    stack, inspect.stack = inspect.stack, _frames
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack = stack


def import_tensor_intrinsics() -> None:
    """Import TVM's tensor intrinsics (idempotent), with TVMScript's ``inspect.stack()`` calls made cheap
    while they parse."""
    import inspect

    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    stack, inspect.stack = inspect.stack, _frames
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack = stack
