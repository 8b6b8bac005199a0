"""An emulated Linux device: TVM's own RPC server in a foreign-ISA Python under qemu-user.

The image (built once, cached) is a Debian Python sysroot for the device's architecture plus TVM's
runtime from PyPI's wheels for it. The server is the same program a real board runs; only the CPU
is emulated (``QEMU_CPU``), so a build using instructions that CPU lacks dies with SIGILL as it
would on the board. Timings under emulation are not device timings; outputs and accuracy are real.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from edge_mnv2 import progress
from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.server import LocalRPCServer

CACHE_ENV = "EDGE_MNV2_CACHE"
TVM_PIN = "apache-tvm==0.27.0.post1"
FFI_PIN = "apache-tvm-ffi==0.1.14.post1"
# What TVM's runtime needs to import on the device (numpy<2.3 keeps a cp311 wheel for manylinux2014).
WHEELS = (TVM_PIN, FFI_PIN, "numpy<2.3", "ml_dtypes", "typing_extensions", "psutil", "cloudpickle")
# The rivals a board's user would run instead, counted on the same emulated CPU (a layer of the image
# made on first use): ONNX Runtime and LiteRT (whose interpreter applies XNNPACK by default), with the
# pure-Python packages they import.
PEER_WHEELS = (
    "onnxruntime==1.32.0",
    "ai-edge-litert==2.3.0",
    "flatbuffers",
    "protobuf",
    "packaging",
    "backports.strenum",
    "tqdm",
)
# The device needs the runtime only: the compiler library (240 MB) and the CUDA runtime are dropped.
DROPPED_LIBS = ("libtvm_compiler.so", "libtvm_runtime_cuda.so")
SERVER_READY_S = 180.0  # a Python + TVM start under emulation takes 10-60 s


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "edge-mnv2"))


@dataclass(frozen=True)
class EmulatorRecipe:
    """How to emulate a target, from the ``[emulate]`` table of its file."""

    qemu: str  # qemu-user binary, e.g. qemu-aarch64
    cpu: str  # QEMU_CPU model, e.g. cortex-a72
    debian_arch: str  # Debian architecture of the sysroot, e.g. arm64
    wheel_platforms: tuple[str, ...]
    python: str = "python3.11"
    debian_packages: tuple[str, ...] = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6")
    # What the guest's /proc/cpuinfo and /sys/devices/system/cpu say (cores 0: leave the host's). ONNX
    # Runtime and XNNPACK pick their kernels from these, as on the board; without them they read the
    # host's x86 cpuinfo under qemu-user and crash.
    cores: int = 0
    cpu_implementer: str = "0x41"
    cpu_part: str = ""
    cpu_variant: str = "0x0"
    cpu_revision: int = 0
    cpu_features: str = ""

    @classmethod
    def from_target(cls, target) -> "EmulatorRecipe":
        return cls.from_table(target.name, target.emulate)

    @classmethod
    def from_table(cls, target_name: str, emulate: dict | None) -> "EmulatorRecipe":
        """The recipe in a target's ``[emulate]`` table (as its file or an artifact records it)."""
        table = dict(emulate or {})
        if not table:
            raise DeviceError(
                f"target {target_name!r} has no [emulate] recipe; run TVM's RPC server on the "
                "real device and give --rpc or --tracker"
            )
        if table.pop("kind", "qemu-user") != "qemu-user":
            raise DeviceError(f"target {target_name!r}: only qemu-user emulation is supported")
        table.pop("note", None)
        for key in ("wheel_platforms", "debian_packages"):
            if key in table:
                table[key] = tuple(table[key])
        known = set(cls.__dataclass_fields__)
        unknown, missing = (
            sorted(set(table) - known),
            sorted(k for k in ("qemu", "cpu", "debian_arch", "wheel_platforms") if k not in table),
        )
        if unknown or missing:
            raise DeviceError(
                f"target {target_name!r}: [emulate] has unknown keys {unknown} and lacks {missing}; "
                f"valid keys: {', '.join(sorted(known))}"
            )
        return cls(**table)

    @property
    def image_name(self) -> str:
        digest = hashlib.sha256(json.dumps([asdict(self), WHEELS], sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.debian_arch}-{self.python}-{digest}"


@dataclass(frozen=True)
class EmulatorImage:
    root: Path
    recipe: EmulatorRecipe

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def python(self) -> Path:
        """A host-executable wrapper that runs the device's Python under qemu (also its sys.executable)."""
        return self.root / "bin" / "python"


def cpuinfo_text(recipe: EmulatorRecipe) -> str:
    """The board's ``/proc/cpuinfo``, in the aarch64 kernel's format."""
    block = (
        f"BogoMIPS\t: 108.00\nFeatures\t: {recipe.cpu_features}\nCPU implementer\t: {recipe.cpu_implementer}\n"
        f"CPU architecture: 8\nCPU variant\t: {recipe.cpu_variant}\nCPU part\t: {recipe.cpu_part}\n"
        f"CPU revision\t: {recipe.cpu_revision}\n"
    )
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(recipe.cores))


def write_board_files(recipe: EmulatorRecipe, sysroot: Path) -> None:
    """Put the board's cpuinfo and CPU topology where qemu's ``-L`` prefix redirects the guest's reads."""
    if not recipe.cores:
        return
    (sysroot / "proc").mkdir(parents=True, exist_ok=True)
    (sysroot / "proc" / "cpuinfo").write_text(cpuinfo_text(recipe))
    cpus = sysroot / "sys" / "devices" / "system" / "cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    span = f"0-{recipe.cores - 1}\n" if recipe.cores > 1 else "0\n"
    for name in ("possible", "present", "online"):
        (cpus / name).write_text(span)
    for i in range(recipe.cores):
        topology = cpus / f"cpu{i}" / "topology"
        topology.mkdir(parents=True, exist_ok=True)
        for name, value in (
            ("physical_package_id", "0"),
            ("core_id", str(i)),
            ("thread_siblings_list", str(i)),
            ("core_siblings_list", span.strip()),
            ("cluster_id", "0"),
        ):
            (topology / name).write_text(value + "\n")


def _run(cmd: list[str], step: str, **kwargs) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DeviceError(f"preparing the emulated device failed to {step}: {' | '.join(tail)}")


SITECUSTOMIZE = '''\
"""Installed by edge-mnv2 in an emulated device's Python."""
import json, os, platform, sys

# The RPC server re-executes sys.executable for its workers; the host kernel cannot run the device's
# binary directly, so point it at the qemu wrapper.
sys.executable = os.environ.get("EDGE_MNV2_DEVICE_PYTHON", sys.executable)

def _register_device_info():
    try:
        import tvm_ffi
    except ImportError:
        return
    info = {"emulated": True, "emulator": os.environ.get("EDGE_MNV2_EMULATOR", "qemu-user"),
            "cpu": os.environ.get("QEMU_CPU", ""), "machine": platform.machine()}
    tvm_ffi.register_global_func("edge_mnv2.device_info", lambda: json.dumps(info), override=True)

_register_device_info()
'''


def prepare(recipe: EmulatorRecipe, root: Path | None = None) -> EmulatorImage:
    """The cached emulator image for ``recipe``, built first if missing (atomically: an interrupted
    build leaves nothing that looks ready)."""
    root = (root or cache_dir() / "emulators") / recipe.image_name
    image = EmulatorImage(root, recipe)
    if (root / "READY").is_file():
        return image
    for tool in (recipe.qemu, "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DeviceError(
                f"{tool} is not installed; run `make setup` (it installs qemu-user and the "
                "cross toolchains from Debian)"
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(root):
        if not (root / "READY").is_file():  # another process may have built it while this one waited
            _build_image(recipe, root)
    return image


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock (``<path>.lock`` beside it) for building ``path``: a second process (another
    test worker, a second command) waits, then finds it ready, instead of replacing what the first one is
    using. The test suite's shared builds use it too."""
    import fcntl

    with open(path.with_name(f"{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_image(recipe: EmulatorRecipe, root: Path) -> None:
    work = root.with_name(f"{root.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        apt = work / "apt"
        for d in ("lists/partial", "cache/archives/partial"):
            (apt / d).mkdir(parents=True)
        (apt / "status").touch()
        opts = [
            f"-oAPT::Architecture={recipe.debian_arch}",
            f"-oAPT::Architectures::={recipe.debian_arch}",
            f"-oDir::State::Lists={apt}/lists",
            f"-oDir::Cache={apt}/cache",
            f"-oDir::State::status={apt}/status",
            "-oDebug::NoLocking=1",
            "-q",
        ]
        with progress.stage(f"downloading a {recipe.debian_arch} {recipe.python} sysroot (Debian packages)"):
            _run(["apt-get", *opts, "update"], "read the Debian package lists")
            _run(
                [
                    "apt-get",
                    *opts,
                    "-y",
                    "--no-install-recommends",
                    "install",
                    "--download-only",
                    *recipe.debian_packages,
                ],
                "download the Debian packages",
            )
            sysroot = work / "sysroot"
            sysroot.mkdir()
            for deb in sorted((apt / "cache" / "archives").glob("*.deb")):
                _run(["dpkg-deb", "-x", str(deb), str(sysroot)], f"unpack {deb.name}")
            write_board_files(recipe, sysroot)
        with progress.stage(f"downloading TVM's runtime for {recipe.debian_arch} (PyPI wheels)"):
            _install_wheels(recipe, WHEELS, work / "site", work / "wheels")
            for lib in DROPPED_LIBS:
                for path in (work / "site").rglob(lib):
                    path.unlink()
            shutil.rmtree(apt)
        (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (work / "bin").mkdir()
        # The wrapper locates the image from its own path, so the finished image can be renamed.
        wrapper = work / "bin" / "python"
        wrapper.write_text(
            '#!/bin/sh\nroot="$(cd "$(dirname "$0")/.." && pwd)"\n'
            f'exec {recipe.qemu} -L "$root/sysroot" "$root/sysroot/usr/bin/{recipe.python}" "$@"\n'
        )
        wrapper.chmod(0o755)
        (work / "READY").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_wheels(recipe: EmulatorRecipe, wheels: tuple[str, ...], site: Path, download: Path) -> None:
    """Download the device's builds of ``wheels`` from PyPI and install them into ``site``."""
    plats = [a for p in recipe.wheel_platforms for a in ("--platform", p)]
    pyver = recipe.python.removeprefix("python")
    common = ["--no-deps", "--only-binary=:all:", *plats, "--python-version", pyver, "--implementation", "cp"]
    _run([sys.executable, "-m", "pip", "download", "-q", *common, "-d", str(download), *wheels], "download the wheels")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            *common,
            "--target",
            str(site),
            *map(str, sorted(download.glob("*.whl"))),
        ],
        "install the wheels",
    )
    shutil.rmtree(download)


def prepare_peers(image: EmulatorImage) -> Path:
    """The site folder holding the rival runtimes for the device (ONNX Runtime, LiteRT with XNNPACK),
    installed on first use beside the image (atomically, like the image)."""
    site = image.root / "peers"
    ready = site / "READY"
    if ready.is_file() and ready.read_text().split() == list(PEER_WHEELS):
        return site
    with build_lock(site):
        if not (ready.is_file() and ready.read_text().split() == list(PEER_WHEELS)):
            _install_peers(image, site)
    return site


def _install_peers(image: EmulatorImage, site: Path) -> None:
    work = site.with_name(f"peers.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with progress.stage(f"downloading ONNX Runtime and LiteRT for {image.recipe.debian_arch} (PyPI wheels)"):
            _install_wheels(image.recipe, PEER_WHEELS, work, image.root / f"wheels.partial-{os.getpid()}")
        (work / "READY").write_text("\n".join(PEER_WHEELS) + "\n")
        shutil.rmtree(site, ignore_errors=True)
        work.rename(site)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(image.root / f"wheels.partial-{os.getpid()}", ignore_errors=True)


def device_environment(image: EmulatorImage) -> dict[str, str]:
    """Environment for the device's Python: its own site folder, the emulated CPU, runtime-only TVM."""
    return {
        "QEMU_CPU": image.recipe.cpu,
        "PYTHONPATH": str(image.site),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TVM_USE_RUNTIME_LIB": "1",
        "EDGE_MNV2_DEVICE_PYTHON": str(image.python),
        "EDGE_MNV2_EMULATOR": f"{image.recipe.qemu} -cpu {image.recipe.cpu}",
    }


class EmulatedRPCServer(LocalRPCServer):
    """TVM's RPC server running on an emulated device, listening on 127.0.0.1."""

    def __init__(
        self, image: EmulatorImage, tracker: tuple[str, int] | None = None, key: str = "", port: int | None = None
    ):
        # Runtime-only TVM leaves out libtvm_runtime_extra (random fill, which MetaSchedule's RPC
        # runner needs, among others); the server loads it, as a Pi used for tuning must too.
        extra = tuple(str(p) for p in image.site.glob("tvm/lib/libtvm_runtime_extra.so"))
        super().__init__(
            port=port,
            tracker=tracker,
            key=key,
            python=str(image.python),
            env=device_environment(image),
            load_libraries=extra,
            ready_timeout=SERVER_READY_S,
        )
        self.image = image

    def describe(self) -> str:
        return f"emulated {self.image.recipe.cpu} ({self.image.recipe.qemu}) on {self.host}:{self.port}"
