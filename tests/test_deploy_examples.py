"""The programs of docs/deploy.md (examples/deploy/) run against real builds of the shipped trained model
``mobilenet_v2_0.35_96.shapes`` and agree with edge-mnv2's own desktop reference (the PyTorch model the
artifact was exported from):

* classify.py with TVM's runtime on the host (host build) and in the emulated Raspberry Pi 4's
  Python (rpi4b build, runtime-only TVM, no Pillow);
* classify.cc built with g++ against the TVM wheel (host build), and cross-compiled with
  aarch64-linux-gnu-g++ against the emulated Pi's libtvm_runtime and run under qemu-aarch64 (rpi4b build);
* mcu_classify.c with the generated C of an mps3-an547 build: compiled by the host gcc, and linked with
  arm-none-eabi-gcc into an image run by qemu-system-arm on the emulated board (semihosting output).

The builds are the session fixtures of conftest.py plus one microcontroller build for this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "deploy"
IMAGES = 3  # validation images of three different classes


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make setup installs it)")


def _run(cmd, timeout=300, stream="stdout", **kwargs) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return getattr(proc, stream)


def _top_classes(stdout: str) -> list[int]:
    """The class indices of classify.py / classify.cc's lines ``RANK  INDEX  PROB  LABEL``."""
    return [int(line.split()[1]) for line in stdout.strip().splitlines()]


@pytest.fixture(scope="module")
def images():
    """Validation images of the shapes set (uint8 HWC), one per class 0..IMAGES-1, with their float inputs."""
    from edge_mnv2.data.labelled import open_split
    from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING

    split = open_split("shapes", "val", 96, 40, preprocessing=IMAGENET_PREPROCESSING)
    batch = split.batch(np.arange(len(split)))
    picks = [int(np.flatnonzero(split.labels == c)[0]) for c in range(IMAGES)]
    return batch[picks]


@pytest.fixture(scope="module")
def reference(trained_artifact, images):
    """edge-mnv2's own prediction: the desktop PyTorch reference bench compares devices with."""
    import torch

    from edge_mnv2.bench.measure import reference_model
    from edge_mnv2.data.preprocessing import Preprocessing

    kind, model = reference_model(trained_artifact)
    assert kind == "pytorch"
    x = Preprocessing.from_dict(trained_artifact.metadata["preprocessing"]).normalize(images)
    with torch.inference_mode():
        logits = model(torch.from_numpy(x)).numpy()
    assert len(set(logits.argmax(1))) == IMAGES, "the reference should tell the test images apart"
    return logits


@pytest.fixture(scope="module")
def image_files(images, tmp_path_factory):
    """Each image as a binary PPM, a .npy and the normalised float32 input (.f32)."""
    from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING

    folder = tmp_path_factory.mktemp("deploy-images")
    files = []
    for i, image in enumerate(images):
        ppm, npy, f32 = folder / f"{i}.ppm", folder / f"{i}.npy", folder / f"{i}.f32"
        ppm.write_bytes(b"P6\n# a comment\n96 96\n255\n" + image.tobytes())
        np.save(npy, image)
        IMAGENET_PREPROCESSING.normalize(image[None]).tofile(f32)
        (folder / f"{i}.rgb").write_bytes(image.tobytes())
        files.append({"ppm": ppm, "npy": npy, "f32": f32, "rgb": folder / f"{i}.rgb"})
    return files


def _tvm_paths():
    import tvm
    import tvm_ffi

    return Path(tvm_ffi.__file__).parent, Path(tvm.__file__).parent


# ---- Python -----------------------------------------------------------------------------------------


def test_python_example_on_host(trained_artifact, image_files, reference):
    env = dict(os.environ, TVM_USE_RUNTIME_LIB="1")
    for i, files in enumerate(image_files):
        out = _run([sys.executable, EXAMPLES / "classify.py", trained_artifact.directory, files["ppm"]], env=env)
        top = _top_classes(out)
        assert len(top) == 5 and top[0] == reference[i].argmax()
        assert out.splitlines()[0].split()[3] == trained_artifact.metadata["model"]["classes"][top[0]]
    out = _run([sys.executable, EXAMPLES / "classify.py", trained_artifact.directory, image_files[0]["npy"]], env=env)
    assert _top_classes(out)[0] == reference[0].argmax()


def test_python_example_on_emulated_pi(rpi4b_artifact, rpi4b_image, image_files, reference):
    """The Pi's Python with runtime-only TVM and numpy (no Pillow, no edge-mnv2): about 40 s under qemu."""
    from edge_mnv2.remote.emulator import device_environment

    env = dict(os.environ, **device_environment(rpi4b_image))
    out = _run(
        [rpi4b_image.python, EXAMPLES / "classify.py", rpi4b_artifact.directory, image_files[1]["ppm"]],
        env=env,
        timeout=600,
    )
    assert _top_classes(out)[0] == reference[1].argmax()


# ---- C++ --------------------------------------------------------------------------------------------


def _cxx_command(compiler: str, output: Path, ffi_dir: Path, tvm_lib: Path, ffi_lib: Path) -> list:
    """The build line of docs/deploy.md."""
    return [
        compiler,
        "-std=c++17",
        "-O2",
        EXAMPLES / "classify.cc",
        "-o",
        output,
        f"-I{ffi_dir / 'include'}",
        f"-L{tvm_lib}",
        f"-L{ffi_lib}",
        "-Wl,--no-as-needed",
        "-ltvm_runtime",
        "-ltvm_ffi",
        f"-Wl,-rpath,{tvm_lib}:{ffi_lib}",
    ]


def _labels(tmp_path: Path, artifact) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(artifact.metadata["model"]["classes"]) + "\n")
    return path


def test_cpp_example_on_host(trained_artifact, image_files, reference, tmp_path):
    _need("g++")
    ffi_dir, tvm_dir = _tvm_paths()
    exe = tmp_path / "classify"
    _run(_cxx_command("g++", exe, ffi_dir, tvm_dir / "lib", ffi_dir / "lib"))
    library, labels = trained_artifact.library_path, _labels(tmp_path, trained_artifact)
    for i, files in enumerate(image_files):
        out = _run([exe, library, files["ppm"], "--labels", labels])
        assert _top_classes(out)[0] == reference[i].argmax()
        assert out.split()[3] == trained_artifact.metadata["model"]["classes"][reference[i].argmax()]
    assert _top_classes(_run([exe, library, image_files[2]["f32"]]))[0] == reference[2].argmax()


def test_cpp_example_on_emulated_pi(rpi4b_artifact, rpi4b_image, image_files, reference, tmp_path):
    """Cross-compiled against the aarch64 libtvm_runtime of PyPI's wheel (the emulated Pi's), run by
    qemu-aarch64 on an emulated Cortex-A72: a few seconds per image."""
    _need("aarch64-linux-gnu-g++", "qemu-aarch64")
    ffi_dir, _ = _tvm_paths()  # the headers are the same for every architecture
    site = rpi4b_image.site
    exe = tmp_path / "classify"
    _run(_cxx_command("aarch64-linux-gnu-g++", exe, ffi_dir, site / "tvm" / "lib", site / "tvm_ffi" / "lib"))
    env = dict(os.environ, QEMU_CPU=rpi4b_image.recipe.cpu)
    qemu = [rpi4b_image.recipe.qemu, "-L", rpi4b_image.sysroot, exe]
    for i, files in enumerate(image_files):
        out = _run([*qemu, rpi4b_artifact.library_path, files["ppm"]], env=env)
        assert _top_classes(out)[0] == reference[i].argmax()
    out = _run([*qemu, rpi4b_artifact.library_path, image_files[0]["f32"]], env=env)
    assert _top_classes(out)[0] == reference[0].argmax()


# ---- microcontroller --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def m55_artifact(tmp_path_factory):
    """The shipped trained model compiled for the emulated MPS3 AN547 (Cortex-M55): C and firmware."""
    _need("arm-none-eabi-gcc")
    from edge_mnv2.compile import compile_model

    return compile_model("mobilenet_v2_0.35_96.shapes", "mps3-an547", tmp_path_factory.mktemp("artifacts") / "m55")


def _mcu_logits(stdout: str) -> tuple[np.ndarray, int]:
    lines = stdout.strip().splitlines()
    logits = np.array([int(line.split()[1]) for line in lines[:-1]], np.float64) / 1e6
    assert lines[-1].startswith("top1 ")
    return logits, int(lines[-1].split()[1])


def test_mcu_example_on_host(m55_artifact, image_files, reference, tmp_path):
    """The generated model C is portable: the host gcc builds it with the example's main()."""
    _need("gcc")
    model = m55_artifact.directory / "model"
    exe = tmp_path / "mcu_classify"
    _run(
        [
            "gcc",
            "-O2",
            "-ffp-contract=off",
            f"-I{model}",
            EXAMPLES / "mcu_classify.c",
            model / "model.c",
            model / "kernels.c",
            model / "weights.S",
            f"-Wa,-I{model}",
            "-Wl,-z,noexecstack",
            "-lm",
            "-o",
            exe,
        ]
    )
    for i, files in enumerate(image_files):
        logits, top1 = _mcu_logits(_run([exe], stdin=open(files["rgb"], "rb")))
        assert top1 == reference[i].argmax()
        np.testing.assert_allclose(logits, reference[i], atol=1e-3)


SEMIHOST_MAIN = r"""
/* The test's board around examples/deploy/mcu_classify.c: semihosting carries its output to the host;
   the image is linked in (image.S) and handed out by harness_fread, which the example's fread becomes
   (-Dfread=harness_fread), as a camera driver would fill the buffer. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
extern void initialise_monitor_handles(void);
extern int app_main(void);
extern void _exit(int);
extern const uint8_t harness_image[], harness_image_end[];
size_t harness_fread(void *dst, size_t size, size_t count, FILE *stream) {
  size_t have = (size_t)(harness_image_end - harness_image), want = size * count;
  size_t n = want < have ? want : have;
  memcpy(dst, harness_image, n);
  return n / size;
}
/* startup.c reports faults through the firmware's protocol; here they go to stderr */
void send_error(uint16_t seq, uint16_t code, const char *message) {
  fprintf(stderr, "fault: %s\n", message);
  _exit(3);
}
int main(void) {
  initialise_monitor_handles();
  int rc = app_main();
  fflush(stdout);
  _exit(rc);
  return rc;
}
"""


def test_mcu_example_on_emulated_m55(m55_artifact, image_files, reference, tmp_path):
    """The example linked into an image for the emulated Cortex-M55 board, with the firmware's startup code
    and linker script, run by qemu-system-arm: the same logits as the host build of the same C."""
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    model, project = m55_artifact.directory / "model", m55_artifact.directory / "firmware"
    arch = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]
    board = ["-DCLOCK_HZ=32000000u", "-DUART_BASE=0x59303000u", "-DUART_BAUD=115200u", '-DBOARD_NAME="m55"']
    (tmp_path / "harness.c").write_text(SEMIHOST_MAIN)
    objects = []
    for source, flags in [
        (EXAMPLES / "mcu_classify.c", ["-Dmain=app_main", "-Dfread=harness_fread"]),
        (tmp_path / "harness.c", []),
        (model / "model.c", []),
        (model / "kernels.c", []),
        (project / "src" / "startup.c", [f"-I{project / 'src'}", *board]),
        (project / "src" / "ticks.c", [f"-I{project / 'src'}", *board]),
    ]:
        objects.append(tmp_path / f"{source.stem}.o")
        _run(["arm-none-eabi-gcc", *arch, "-O2", f"-I{model}", *flags, "-c", source, "-o", objects[-1]])
    _run(["arm-none-eabi-gcc", *arch, f"-Wa,-I{model}", "-c", model / "weights.S", "-o", tmp_path / "weights.o"])
    objects.append(tmp_path / "weights.o")
    results = []
    for i, files in enumerate(image_files):
        (tmp_path / "image.S").write_text(
            '    .section .rodata.harness_image, "a"\n'
            "    .global harness_image, harness_image_end\n"
            f'harness_image:\n    .incbin "{files["rgb"]}"\nharness_image_end:\n'
        )
        _run(["arm-none-eabi-gcc", *arch, "-c", tmp_path / "image.S", "-o", tmp_path / "image.o"])
        elf = tmp_path / f"classify-{i}.elf"
        _run(
            [
                "arm-none-eabi-gcc",
                *arch,
                "-nostartfiles",
                "--specs=nano.specs",
                "--specs=rdimon.specs",
                "-Wl,--gc-sections",
                f"-L{project / 'build'}",
                f"-T{project / 'src' / 'firmware.ld'}",
                *objects,
                tmp_path / "image.o",
                "-lm",
                "-o",
                elf,
            ]
        )
        out = _run(
            [
                "qemu-system-arm",
                "-M",
                "mps3-an547",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "null",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
                elf,
            ],
            timeout=120,
            stream="stderr",
        )  # qemu 7.2 writes the guest's semihosting console to its stderr
        logits, top1 = _mcu_logits(out)
        assert top1 == reference[i].argmax()
        np.testing.assert_allclose(logits, reference[i], atol=1e-3)
        results.append(logits)
    assert len({int(r.argmax()) for r in results}) == IMAGES
