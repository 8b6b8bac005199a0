"""Count the instructions one inference executes on an emulated board, for TVM and for the rivals a
board's user would run instead, each in its own emulated process on one thread.

A counting process is the board's Python under qemu-user with the counting plugin loaded: it loads the
model with one runtime (:mod:`guest_count`), runs it once untimed, then marks each counted run. Counts
are deterministic (runs repeat within a fraction of a percent); they say which code runs (vector or
scalar FMAs, loads) on the emulated CPU, not how long it takes on the board: caches, memory bandwidth and
issue width are not modelled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_mnv2.errors import DeviceError, DeviceTimeoutError
from edge_mnv2.remote.emulator import EmulatorImage, device_environment, prepare_peers
from edge_mnv2.remote.instructions.plugin import CLASSES, MARKER_FD, Region, build_plugin, plugin_option, read_regions

GUEST_SCRIPT = Path(__file__).with_name("guest_count.py")
# What each counted runtime is, as reports name it.
RUNTIMES = {
    "tvm": "TVM (the artifact's library, Relax VM)",
    "onnxruntime": "ONNX Runtime 1.32 (CPU provider)",
    "litert_xnnpack": "LiteRT 2.3 with XNNPACK (its default delegate)",
    "litert_builtin": "LiteRT 2.3, built-in kernels (no delegate)",
}
_running: set[subprocess.Popen] = set()  # counting processes alive, so an interrupt can stop them all
_running_lock = threading.Lock()
NOTE = (
    "instruction counts on an emulated CPU (qemu-user, a counting plugin), not time: deterministic, but "
    "caches, memory bandwidth and issue width are not modelled"
)


@dataclass(frozen=True)
class CountSettings:
    """How to count: inferences run untimed first, counted inferences, and the limit for one process."""

    warmup: int = 1
    runs: int = 3
    timeout: float = 1800.0

    def __post_init__(self):
        if self.warmup < 0 or self.runs < 1:
            raise DeviceError(
                f"instruction counting needs warmup >= 0 and runs >= 1, got {self.warmup} and {self.runs}"
            )


@dataclass(frozen=True)
class CountedRuntime:
    """One runtime's counted inferences on the emulated CPU, and its output for the counted input."""

    runtime: str
    regions: list[Region]
    output: np.ndarray
    settings: CountSettings = field(default_factory=CountSettings)
    # (kernel, its count) for each kernel call of one inference, in call order (count_runtime's per_kernel)
    kernels: list[tuple[str, Region]] = field(default_factory=list)

    @property
    def median(self) -> Region:
        """The counted run with the median total (its class mix goes with it)."""
        ordered = sorted(self.regions, key=lambda r: r.total)
        return ordered[(len(ordered) - 1) // 2]

    def summary(self, macs: int | None) -> dict:
        """The report's ``instructions`` section for this runtime."""
        median = self.median
        totals = [r.total for r in self.regions]
        out = {
            "per_inference": median.total,
            "min": min(totals),
            "max": max(totals),
            "mix": {name: median.mix.get(name, 0) for name in CLASSES},
            "vector_fma_lanes": median.vector_fma_lanes,
            "runs": len(totals),
            "warmup": self.settings.warmup,
            "threads": 1,
            "note": NOTE,
        }
        if macs:
            out["macs"] = macs
            out["per_mac"] = median.total / macs
            out["vector_fma_share"] = median.vector_fma_lanes / macs
        return out


def _environment(image: EmulatorImage, peers: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_", "TVM_"))}
    env.update(device_environment(image))
    if peers is not None:
        env["PYTHONPATH"] = f"{image.site}{os.pathsep}{peers}"
    # One thread for every runtime (TVM's pool, OpenBLAS in numpy, OpenMP) so the counted work is one
    # thread's: the plugin's counters are not atomic across guest threads.
    env.update(TVM_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", TVM_BIND_THREADS="0")
    return env


def count_runtime(
    image: EmulatorImage,
    runtime: str,
    model: Path,
    x: np.ndarray,
    settings: CountSettings = CountSettings(),
    plugin: Path | None = None,
    per_kernel: bool = False,
    cancel: threading.Event | None = None,
) -> CountedRuntime:
    """Count ``settings.runs`` inferences of ``model`` (a library for TVM, an .onnx or .tflite for the
    rivals) on ``x`` with ``runtime`` on the emulated CPU of ``image``. ``per_kernel`` (TVM, a build with
    the bytecode VM): one more run counts each kernel call on its own (``CountedRuntime.kernels``). ``cancel``
    (set under ``_running_lock``): a count whose process starts after it is set stops at once."""
    if per_kernel and runtime != "tvm":
        raise DeviceError(f"per-kernel counts are for TVM's builds, not {runtime!r}")
    if runtime not in RUNTIMES:
        raise DeviceError(f"cannot count runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    plugin = plugin or build_plugin()
    peers = None if runtime == "tvm" else prepare_peers(image)
    with tempfile.TemporaryDirectory(prefix=f"edge-mnv2-count-{runtime}-") as tmp:
        work = Path(tmp)
        np.save(work / "input.npy", np.ascontiguousarray(x, dtype=np.float32))
        counts = work / "counts.jsonl"
        cmd = [
            image.recipe.qemu,
            "-L",
            str(image.sysroot),
            *plugin_option(plugin, counts),
            str(image.sysroot / "usr" / "bin" / image.recipe.python),
            str(GUEST_SCRIPT),
            runtime,
            str(Path(model).resolve()),
            str(work / "input.npy"),
            str(work / "output.npy"),
            "--warmup",
            str(settings.warmup),
            "--runs",
            str(settings.runs),
            "--marker-fd",
            str(MARKER_FD),
        ]
        if per_kernel:
            cmd += ["--per-kernel", str(work / "kernels.json")]
        # A session of its own, so an interrupt or a timeout stops qemu and nothing else.
        proc = subprocess.Popen(
            cmd,
            env=_environment(image, peers),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        with _running_lock:
            _running.add(proc)
            cancelled = cancel is not None and cancel.is_set()
        try:
            if cancelled:  # count_many is stopping every count: this one started too late to be seen
                raise DeviceError(f"counting {runtime} was cancelled")
            log, _ = proc.communicate(timeout=settings.timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise DeviceTimeoutError(
                f"counting {runtime} on the emulated {image.recipe.cpu} took over "
                f"{settings.timeout:.0f} s; give a longer --timeout"
            ) from None
        except BaseException:
            _kill(proc)
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
        regions = read_regions(counts) if counts.exists() else []
        names = json.loads((work / "kernels.json").read_text()) if per_kernel and proc.returncode == 0 else []
        if per_kernel and proc.returncode == 0 and not names:
            raise DeviceError(
                f"no kernel calls seen in {model}: per-kernel counts need a build with the bytecode "
                "VM (compile with --exec-mode bytecode)"
            )
        if proc.returncode != 0 or len(regions) != settings.runs + 1 + len(names):
            tail = " | ".join(log.strip().splitlines()[-3:])
            raise DeviceError(
                f"counting {runtime} on the emulated {image.recipe.cpu} failed (exit "
                f"{proc.returncode}, {max(0, len(regions) - 1)} of {settings.runs} runs counted): "
                f"{tail}"
            )
        markers = regions[0]  # the empty region: the markers' own cost
        runs = regions[1 : settings.runs + 1]
        kernels = [(name, r - markers) for name, r in zip(names, regions[settings.runs + 1 :])]
        return CountedRuntime(runtime, [r - markers for r in runs], np.load(work / "output.npy"), settings, kernels)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def count_many(
    image: EmulatorImage,
    jobs: dict[str, tuple[Path, np.ndarray]],
    settings: CountSettings = CountSettings(),
    workers: int | None = None,
) -> dict[str, CountedRuntime]:
    """Count several runtimes (``{runtime: (model, input)}``), as many at once as the host has cores: each
    count is its own process and does not depend on what runs beside it."""
    plugin = build_plugin()
    if any(runtime != "tvm" for runtime in jobs):
        prepare_peers(image)  # once, before the processes that need it start
    workers = workers or max(1, min(len(jobs), os.cpu_count() or 1))
    pool = ThreadPoolExecutor(workers)
    cancel = threading.Event()
    try:
        futures = {
            runtime: pool.submit(count_runtime, image, runtime, model, x, settings, plugin, cancel=cancel)
            for runtime, (model, x) in jobs.items()
        }
        return {runtime: future.result() for runtime, future in futures.items()}
    except BaseException:
        # Ctrl-C, SIGTERM (or one count failing) stops every count still running: none is left behind, not
        # even one whose thread was about to start it.
        pool.shutdown(wait=False, cancel_futures=True)
        with _running_lock:
            cancel.set()
            procs = list(_running)
        for proc in procs:
            _kill(proc)
        raise
    finally:
        pool.shutdown(wait=True)
