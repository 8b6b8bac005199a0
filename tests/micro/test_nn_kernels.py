"""The int8 kernels of firmware/nn: the portable C against numpy on the host, and the SIMD kernels
against the portable ones on the emulated boards (firmware/nn/selftest under qemu-system-arm)."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
NN_DIR = ROOT / "firmware" / "nn"
SELFTEST_DIR = NN_DIR / "selftest"
BOARDS = ["mps2-an386", "mps3-an547", "mps2-an385"]  # Cortex-M4F, Cortex-M55, Cortex-M3


# ------------------------------------------------------------------------------------------------
# Host: the portable kernels through ctypes, against the same integer arithmetic in numpy (int64).


def requant(acc, mult, shift, lo, hi):
    v = (acc.astype(np.int64) * np.asarray(mult, np.int64) + (1 << (shift - 1))) >> shift
    return np.clip(v, lo, hi).astype(np.int8)


def ref_pw(x, w, bias, mult, shift, lo, hi):
    acc = x.astype(np.int64) @ w.astype(np.int64).T + bias
    return requant(acc, mult, shift, lo, hi)


def ref_dw_row(rows, w, bias, mult, shift, lo, hi, stride):
    """rows: 3 arrays [in_w][C] or None; w [3][3][C]."""
    in_w, c = next(r for r in rows if r is not None).shape
    out_w = (in_w - 1) // stride + 1
    acc = np.tile(bias.astype(np.int64), (out_w, 1))
    for ky, row in enumerate(rows):
        if row is None:
            continue
        padded = np.zeros((in_w + 2, c), np.int64)
        padded[1:-1] = row
        for kx in range(3):
            acc += padded[kx : kx + stride * (out_w - 1) + 1 : stride] * w[ky, kx].astype(np.int64)
    return requant(acc, mult, shift, lo, hi)


def ref_conv(x, w, bias, mult, shift, lo, hi, stride, pad):
    h, wd, cin = x.shape
    k = w.shape[1]
    xp = np.zeros((h + 2 * pad, wd + 2 * pad, cin), np.int64)
    xp[pad : pad + h, pad : pad + wd] = x
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    acc = np.tile(bias.astype(np.int64), (oh, ow, 1))
    for ky in range(k):
        for kx in range(k):
            patch = xp[ky : ky + stride * (oh - 1) + 1 : stride, kx : kx + stride * (ow - 1) + 1 : stride]
            acc += patch @ w[:, ky, kx, :].astype(np.int64).T
    return requant(acc, mult, shift, lo, hi)


@pytest.fixture(scope="module")
def nnlib(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    out = tmp_path_factory.mktemp("nn") / "libmnv2nn.so"
    # every .c of firmware/nn: the SIMD files must compile (to nothing) on the host too
    sources = sorted(str(p) for p in NN_DIR.glob("*.c"))
    subprocess.run(
        [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", *sources, "-o", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return ctypes.CDLL(str(out))


def _p(a):
    return a.ctypes.data_as(ctypes.c_void_p)


I32 = ctypes.c_int32


@pytest.mark.parametrize(
    "pixels,cin,cout,shift,lo,hi", [(7, 16, 8, 38, -127, 127), (5, 13, 7, 32, 0, 127), (3, 40, 9, 20, -100, 90)]
)
def test_portable_pw_matches_numpy(nnlib, pixels, cin, cout, shift, lo, hi):
    rng = np.random.default_rng(pixels * 1000 + cin)
    x = rng.integers(-128, 128, (pixels, cin), dtype=np.int8)
    w = rng.integers(-127, 128, (cout, cin), dtype=np.int8)
    bias = rng.integers(-20000, 20000, cout, dtype=np.int32)
    scale = 48.0 / (np.sqrt(cin) * 128 * 74)
    mult = (rng.uniform(0.5, 1.5, cout) * scale * 2.0**shift).astype(np.int32)
    out = np.zeros((pixels, cout), np.int8)
    scratch = np.zeros(8 * (cin + 8), np.uint8)
    nnlib.mnv2_pw_s8_portable(
        _p(x),
        I32(pixels),
        I32(cin),
        _p(w),
        _p(bias),
        _p(mult),
        I32(shift),
        I32(lo),
        I32(hi),
        I32(cout),
        _p(out),
        _p(scratch),
    )
    np.testing.assert_array_equal(out, ref_pw(x, w, bias, mult, shift, lo, hi))


@pytest.mark.parametrize("in_w,c,stride,null", [(7, 20, 2, 0), (12, 16, 1, 2), (5, 13, 1, 0), (6, 8, 2, 2)])
def test_portable_dw_matches_numpy(nnlib, in_w, c, stride, null):
    rng = np.random.default_rng(in_w * 100 + c)
    rows_np = [rng.integers(-128, 128, (in_w, c), dtype=np.int8) for _ in range(3)]
    if null:
        rows_np[null] = None
    w = rng.integers(-127, 128, (3, 3, c), dtype=np.int8)
    bias = rng.integers(-20000, 20000, c, dtype=np.int32)
    shift = 36
    mult = (rng.uniform(0.5, 1.5, c) * 48.0 / (3 * 128 * 74) * 2.0**shift).astype(np.int32)
    out_w = (in_w - 1) // stride + 1
    out = np.zeros((out_w, c), np.int8)
    rows = (ctypes.c_void_p * 3)(*[None if r is None else r.ctypes.data for r in rows_np])
    scratch = np.zeros(6 * (in_w + 4) * (c + 3) + 64, np.uint8)
    nnlib.mnv2_dw3x3_row_s8_portable(
        rows,
        I32(in_w),
        I32(c),
        I32(stride),
        _p(w),
        _p(bias),
        _p(mult),
        I32(shift),
        I32(0),
        I32(127),
        _p(out),
        _p(scratch),
    )
    np.testing.assert_array_equal(out, ref_dw_row(rows_np, w, bias, mult, shift, 0, 127, stride))


def test_portable_conv_add_pool_dense_match_numpy(nnlib):
    rng = np.random.default_rng(7)
    # the stem: k3 s2 p1, cin 3
    h, wd, cin, cout, shift = 9, 11, 3, 6, 37
    x = rng.integers(-128, 128, (h, wd, cin), dtype=np.int8)
    w = rng.integers(-127, 128, (cout, 3, 3, cin), dtype=np.int8)
    bias = rng.integers(-20000, 20000, cout, dtype=np.int32)
    mult = (rng.uniform(0.5, 1.5, cout) * 48.0 / (5 * 128 * 74) * 2.0**shift).astype(np.int32)
    ref = ref_conv(x, w, bias, mult, shift, 0, 127, 2, 1)
    out = np.zeros(ref.shape, np.int8)
    scratch = np.zeros(512, np.uint8)
    nnlib.mnv2_conv_s8_portable(
        _p(x),
        I32(h),
        I32(wd),
        I32(cin),
        _p(w),
        I32(3),
        I32(2),
        I32(1),
        _p(bias),
        _p(mult),
        I32(shift),
        I32(0),
        I32(127),
        I32(cout),
        _p(out),
        _p(scratch),
    )
    np.testing.assert_array_equal(out, ref)

    # residual add
    n, shift = 37, 30
    a = rng.integers(-128, 128, n, dtype=np.int8)
    b = rng.integers(-128, 128, n, dtype=np.int8)
    ma, mb = int(0.7 * 2**29), int(1.3 * 2**29)
    out = np.zeros(n, np.int8)
    nnlib.mnv2_add_s8_portable(_p(a), _p(b), I32(n), I32(ma), I32(mb), I32(shift), _p(out))
    v = (a.astype(np.int64) * ma + b.astype(np.int64) * mb + (1 << (shift - 1))) >> shift
    np.testing.assert_array_equal(out, np.clip(v, -127, 127).astype(np.int8))

    # global average pool
    pixels, ch, shift = 9, 20, 33
    x = rng.integers(-128, 128, (pixels, ch), dtype=np.int8)
    mult = int(2**shift / 9)
    out = np.zeros(ch, np.int8)
    nnlib.mnv2_avgpool_s8_portable(_p(x), I32(pixels), I32(ch), I32(mult), I32(shift), _p(out))
    np.testing.assert_array_equal(out, requant(x.astype(np.int64).sum(0), mult, shift, -127, 127))

    # classifier
    cin, cout = 45, 10
    x = rng.integers(-128, 128, cin, dtype=np.int8)
    w = rng.integers(-127, 128, (cout, cin), dtype=np.int8)
    bias = rng.integers(-20000, 20000, cout, dtype=np.int32)
    scale = rng.uniform(1e-5, 1e-3, cout).astype(np.float32)
    out = np.zeros(cout, np.float32)
    nnlib.mnv2_dense_s8_portable(_p(x), I32(cin), _p(w), _p(bias), _p(scale), I32(cout), _p(out))
    acc = (x.astype(np.int64) @ w.astype(np.int64).T + bias).astype(np.int32)
    np.testing.assert_array_equal(out, acc.astype(np.float32) * scale)


# ------------------------------------------------------------------------------------------------
# Emulated boards: the self-test harness.

CASE_RE = re.compile(r"^CASE (\S+) (\S+) macs=(\d+) shift=(-?\d+) crc=([0-9a-f]{8}) portable=(\d+)(.*)$")
IMPL_RE = re.compile(r" (\w+)=(\d+) \1_ok=(yes|no)")


def _tools_or_skip():
    missing = [t for t in ("make", "arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")


def run_selftest(board: str, build_dir: Path, timeout: float = 240.0, cases: Path | None = None) -> dict:
    """Builds and runs the harness (with the extra ``cases`` file, if any); returns
    {"cases": {(kernel, shape): {...}}, "header", "done", "rc"}."""
    extra = [f"CASES={cases}"] if cases else []
    subprocess.run(
        ["make", "-s", "-C", str(SELFTEST_DIR), f"BOARD={board}", f"BUILD_DIR={build_dir}", *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    proc = subprocess.run(
        [
            "qemu-system-arm",
            "-M",
            board,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "null",
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0,align=off,sleep=off",
            "-kernel",
            str(build_dir / "selftest.elf"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    # semihosting's console is qemu's stderr
    text = proc.stdout + proc.stderr
    result = {"cases": {}, "header": "", "done": None, "rc": proc.returncode, "stdout": text}
    for line in text.splitlines():
        if line.startswith("SELFTEST"):
            result["header"] = line
        elif line.startswith("DONE"):
            result["done"] = line
        elif m := CASE_RE.match(line):
            impls = {name: (int(ins), ok == "yes") for name, ins, ok in IMPL_RE.findall(m.group(7))}
            result["cases"][(m.group(1), m.group(2))] = {
                "macs": int(m.group(3)),
                "crc": m.group(5),
                "portable": int(m.group(6)),
                "impls": impls,
            }
    return result


@pytest.fixture(scope="module")
def selftests(tmp_path_factory):
    _tools_or_skip()
    root = tmp_path_factory.mktemp("selftest")
    cache: dict[str, dict] = {}

    def get(board: str) -> dict:
        if board not in cache:
            cache[board] = run_selftest(board, root / board)
        return cache[board]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_simd_kernels_match_portable(selftests, board):
    res = selftests(board)
    assert res["done"] is not None, res["stdout"][-2000:]
    assert res["done"].endswith("failures=0"), res["done"]
    assert res["rc"] == 0
    assert len(res["cases"]) >= 60
    for key, case in res["cases"].items():
        assert "dsp" in case["impls"], key
        for name, (_, ok) in case["impls"].items():
            assert ok, f"{board} {name} {key}"


@pytest.mark.slow
def test_simd_kernels_are_faster_on_m4(selftests):
    """The DSP kernels' instruction counts on mps2-an386 (Cortex-M4) for mobilenet_v2_0.35_96's shapes."""
    cases = selftests("mps2-an386")["cases"]

    def per_mac(kind):
        sel = [c for (k, s), c in cases.items() if k == kind and s.endswith("/sh0") and c["macs"] > 20000]
        return sum(c["impls"]["dsp"][0] for c in sel) / sum(c["macs"] for c in sel)

    assert per_mac("pw") < 1.5
    assert per_mac("conv") < 2.1
    # 3.30 (2.5-2.75 on the wide stride-1 rows, 3.7-4.2 at stride 2, 4.4-7.2 on the 6- and 3-wide rows)
    assert per_mac("dw") < 3.5
    for (kind, shape), c in cases.items():
        if c["macs"] > 20000 and kind in ("pw", "dw", "conv", "dense"):
            assert c["impls"]["dsp"][0] < c["portable"], (kind, shape)


@pytest.mark.slow
def test_portable_kernels_on_m3(selftests):
    """Cortex-M3 has no DSP extension: the portable kernels run, and give the M4's results."""
    m3, m4 = selftests("mps2-an385"), selftests("mps2-an386")
    assert m3["done"] is not None and m3["done"].endswith("failures=0"), m3["stdout"][-2000:]
    assert "impls=portable " in m3["header"]
    assert m3["cases"].keys() == m4["cases"].keys()
    for key, case in m3["cases"].items():
        assert case["impls"] == {}
        assert case["crc"] == m4["cases"][key]["crc"], key


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_simd_kernels_match_portable_on_every_shape_of_the_family(board, tmp_path):
    """Every kernel shape of MobileNetV2 over the paper's widths and resolutions (tests/micro/family_shapes.py),
    on random tensors: the SIMD kernels give the portable kernels' bytes."""
    from family_shapes import family_shapes, write_cases

    _tools_or_skip()
    count = write_cases(tmp_path / "family_cases.h")
    res = run_selftest(board, tmp_path / "build", cases=tmp_path / "family_cases.h")
    assert res["done"] is not None and res["done"].endswith("failures=0"), res["stdout"][-2000:]
    shapes = family_shapes()
    assert len(res["cases"]) >= count > sum(len(v) for v in shapes.values())  # plus linear variants
    for kind, dims in (("pw", (3, 448, 1792)), ("dw", (112, 32, 1)), ("dense", (1792, 1000))):
        assert any(k == kind and all(str(d) in s for d in dims) for k, s in res["cases"]), kind
    assert all(ok for case in res["cases"].values() for _, ok in case["impls"].values())
