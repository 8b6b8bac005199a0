"""Building CUDA artifacts: the toolkit's architectures, a driver stand-in for GPU-less build machines,
the local GPU's architecture, and what a built library's CUDA code targets.

TVM compiles CUDA kernels with nvcc (``TVM_CUDA_COMPILE_MODE=nvcc``; its default NVRTC mode needs the
``cuda-bindings`` package) into a fatbin embedded in the exported library. TVM's CUDA runtime library
links ``libcuda.so.1``, the driver; on a build machine without one it silently fails to load and the
build degrades to a module holding only CUDA source, which no device can run. A tiny stand-in that
exports the driver symbols the runtime links against (each call answers "no device") lets the build
run; it is never used to run anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

from edge_mnv2.errors import CompileError

NVCC = "nvcc"
EM_CUDA = 190
ELFOSABI_CUDA = 0x41
_STUB_SOURCE = """\
/* edge-mnv2: a build-only stand-in for the NVIDIA driver library; every call reports "no device". */
typedef int CUresult;
#define CUDA_ERROR_NO_DEVICE 100
static const char no_device[] = "CUDA_ERROR_NO_DEVICE (edge-mnv2 build-only driver stand-in)";
CUresult cuGetErrorName(CUresult e, const char **s) { (void)e; if (s) *s = no_device; return 0; }
CUresult cuGetErrorString(CUresult e, const char **s) { (void)e; if (s) *s = no_device; return 0; }
#define STUB(name) CUresult name(void) { return CUDA_ERROR_NO_DEVICE; }
STUB(cuInit) STUB(cuDriverGetVersion) STUB(cuDeviceGet) STUB(cuDeviceGetCount) STUB(cuDeviceGetName)
STUB(cuDeviceGetAttribute) STUB(cuFuncSetAttribute) STUB(cuLaunchKernel) STUB(cuLaunchKernelEx)
STUB(cuModuleGetFunction) STUB(cuModuleLoadData) STUB(cuModuleUnload) STUB(cuTensorMapEncodeTiled)
STUB(cuGetProcAddress) STUB(cuGetProcAddress_v2) STUB(cuCtxGetCurrent) STUB(cuCtxSetCurrent)
"""


@functools.lru_cache(maxsize=None)
def toolkit() -> tuple[str, tuple[str, ...]]:
    """``(nvcc version, the sm_XX architectures it can compile for)``; raises if nvcc is missing."""
    nvcc = shutil.which(NVCC)
    if nvcc is None:
        raise CompileError(
            "CUDA targets need nvcc (the CUDA toolkit) on PATH; install the toolkit that "
            "supports the target's GPU (see its target file) and rerun"
        )
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"release ([\d.]+)", version)
    codes = subprocess.run([nvcc, "--list-gpu-code"], capture_output=True, text=True).stdout.split()
    return (match.group(1) if match else "?"), tuple(c for c in codes if c.startswith("sm_"))


def check_architecture(target_name: str, arch: str, jetpack: str | None = None) -> None:
    """Fail with the toolkit that is needed when this nvcc cannot compile for ``arch``."""
    version, arches = toolkit()
    if arch in arches:
        return
    newest = "12.x" if int(arch.removeprefix("sm_")) < 75 else "newer"
    board = f"the board's own toolkit ({jetpack}) or " if jetpack else ""
    raise CompileError(
        f"{target_name} needs {arch} code, which nvcc {version} here cannot generate (it supports "
        f"{arches[0]}..{arches[-1]}; CUDA 13 dropped sm_50-sm_72). Build with {board}another CUDA toolkit "
        f"up to {newest} that supports {arch} and the board's driver: put its nvcc first on PATH, or compile "
        "on the device itself"
    )


def _driver_loadable() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def ensure_driver_library() -> str:
    """Make ``libcuda.so.1`` loadable in this process (the real driver, or the build-only stand-in),
    then make sure TVM's CUDA runtime is loaded. Returns "driver" or the stand-in's path."""
    which = "driver"
    if not _driver_loadable():
        from edge_mnv2.remote.emulator import cache_dir

        folder = cache_dir() / "cuda-driver-stub"
        library = folder / "libcuda.so.1"
        if not library.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            source = folder / "stub.c"
            source.write_text(_STUB_SOURCE)
            partial = folder / "libcuda.so.1.partial"
            proc = subprocess.run(
                ["gcc", "-shared", "-fPIC", "-O2", "-Wl,-soname,libcuda.so.1", "-o", str(partial), str(source)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise CompileError(f"could not build the CUDA driver stand-in: {proc.stderr.strip()[:200]}")
            os.replace(partial, library)
        # loaded globally under its soname, it satisfies the runtime's NEEDED libcuda.so.1
        ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
        which = str(library)
    _load_tvm_cuda_runtime()
    return which


def _load_tvm_cuda_runtime() -> None:
    """TVM loads its CUDA runtime at import and skips it quietly if the driver was missing then."""
    import tvm

    if tvm.get_global_func("ffi.Module.load_from_bytes.cuda", allow_missing=True) is not None:
        return
    runtime = Path(tvm.__file__).parent / "lib" / "libtvm_runtime_cuda.so"
    try:
        ctypes.CDLL(str(runtime), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        raise CompileError(
            f"TVM's CUDA runtime ({runtime}) cannot be loaded: {exc}. It needs the CUDA "
            "runtime library libcudart (install the CUDA toolkit)"
        ) from exc


@contextlib.contextmanager
def nvcc_build():
    """The environment a CUDA build needs: a loadable driver library and nvcc as TVM's compiler."""
    ensure_driver_library()
    previous = os.environ.get("TVM_CUDA_COMPILE_MODE")
    os.environ["TVM_CUDA_COMPILE_MODE"] = "nvcc"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TVM_CUDA_COMPILE_MODE", None)
        else:
            os.environ["TVM_CUDA_COMPILE_MODE"] = previous


def local_architecture() -> str:
    """``sm_XY`` of this machine's first NVIDIA GPU, or a clear error if there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return "sm_" + out.stdout.strip().splitlines()[0].strip().replace(".", "")
    raise CompileError(
        "target 'cuda' builds for this machine's GPU, but no NVIDIA GPU was found (nvidia-smi); "
        'set arch = "sm_XY" in targets/cuda.toml to build for a GPU elsewhere'
    )


def cubin_architectures(data: bytes) -> list[str]:
    """The ``sm_XY`` of every CUDA ELF (cubin) embedded in ``data`` (a library, fatbin or cubin)."""
    found = []
    start = data.find(b"\x7fELF")
    while start >= 0:
        header = data[start : start + 64]
        if len(header) == 64 and struct.unpack_from("<H", header, 18)[0] == EM_CUDA:
            flags = struct.unpack_from("<I", header, 48)[0]
            # the CUDA ELF ABI moved the SM number from bits 0-7 to bits 8-15 in ABI version 8
            sm = (flags >> 8) & 0xFF if header[7] == ELFOSABI_CUDA and header[8] >= 8 else flags & 0xFF
            found.append(f"sm_{sm}")
        start = data.find(b"\x7fELF", start + 1)
    return found
