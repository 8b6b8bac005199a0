"""``pip install .`` (a wheel, not the checkout) gives a tool that works from any folder: the target files,
firmware sources, trained weights and committed tuning logs ship in the wheel, and the installed package
reads them from itself, never from the checkout it was built from (see ``edge_mnv2/resources.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from edge_mnv2.resources import DATA_ENV, FOLDER_ENVS, FOLDERS

REPO = Path(__file__).resolve().parent.parent
MODEL = "mobilenet_v2_0.35_96.shapes"


def _copy_checkout(dest: Path) -> None:
    """The checkout's files as git sees them (tracked, and untracked but not ignored) -- no build/, .venv/
    or old egg-info of the checkout gets into the wheel, and the build writes nothing into the checkout."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(out.strip())


@pytest.mark.slow
def test_the_installed_wheel_works_from_any_folder_with_its_own_data(tmp_path):
    for tool in ("git", "aarch64-linux-gnu-g++", "arm-none-eabi-gcc"):  # scripts/setup.sh installs them
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    src, dist, venv, work = tmp_path / "src", tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    _copy_checkout(src)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(dist), "-q"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("edge_mnv2-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "edge_mnv2/_data/targets/rpi4b.toml",
        "edge_mnv2/_data/targets/mps2-an386.toml",
        "edge_mnv2/_data/firmware/src/main.c",
        "edge_mnv2/_data/firmware/Makefile",
        f"edge_mnv2/_data/tuning_logs/host/{MODEL.rsplit('.', 1)[0]}/database_tuning_record.json",
        f"edge_mnv2/pretrained/{MODEL}.pt",
        f"edge_mnv2/pretrained/{MODEL}.toml",
        "edge_mnv2/remote/instructions/insn_count.c",
    ):
        assert shipped in names, shipped
    assert not any(n.startswith(("tests/", "targets/", "firmware/", "tuning_logs/")) for n in names)
    assert wheel.stat().st_size < 40 * 2**20  # about 8 MiB today: weights 6, tuning logs 2 (35 unzipped)

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python, tool = venv / "bin" / "python", venv / "bin" / "edge-mnv2"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The heavy dependencies (torch, TVM, onnx, onnxruntime, numpy: GBs, and the tests run without a network)
    # come from this interpreter's environment: a .pth line puts its site-packages on the new venv's path,
    # after the venv's own, so edge_mnv2 itself is the wheel's. Plain path lines do not run the .pth files
    # there, so this environment's editable install of the checkout stays invisible.
    host = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (_site_packages(python) / "_edge_mnv2_test_deps.pth").write_text("".join(f"{p}\n" for p in host))

    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XDG_DATA_HOME", DATA_ENV, *FOLDER_ENVS.values())
    }
    env["HOME"] = str(tmp_path / "home")  # where an installed tool's own tuning logs go

    def run(*args, command=(str(tool),)):
        return subprocess.Popen(
            [*command, *args], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    # the long compile runs beside the rest
    rpi = run("compile", MODEL, "--target", "rpi4b", "-o", str(work / "rpi4b"))
    where = run(
        command=(
            str(python),
            "-c",
            "import json, edge_mnv2.resources as r; from edge_mnv2.tuning.logs "
            f"import find_log; print(json.dumps({{**r.describe(), 'package': str(r.PACKAGE_DIR), "
            f"'log': str(find_log('host', '{MODEL}'))}}))",
        )
    )
    out, _ = where.communicate(timeout=600)
    assert where.returncode == 0, out
    found = json.loads(out.strip().splitlines()[-1])
    package = Path(found["package"])
    assert package.is_relative_to(venv) and found["checkout"] is None, found
    for folder in FOLDERS:
        assert found[folder]["source"] == "package", found
        assert Path(found[folder]["path"]) == package / "_data" / folder
    assert Path(found["log"]).is_relative_to(package / "_data" / "tuning_logs"), found
    assert Path(found["tuning_logs"]["written_to"]) == tmp_path / "home" / ".local/share/edge-mnv2/tuning_logs"

    models = run("models")
    out, _ = models.communicate(timeout=600)
    assert models.returncode == 0, out
    assert MODEL in out and "trained on shapes, val top-1" in out

    mcu = run("compile", MODEL, "--target", "mps2-an386", "-o", str(work / "mps2-an386"))
    out, _ = mcu.communicate(timeout=600)
    assert mcu.returncode == 0, out
    assert (work / "mps2-an386" / "firmware.elf").is_file()
    assert (work / "mps2-an386" / "firmware" / "src" / "main.c").is_file()  # the shipped sources, copied

    out, _ = rpi.communicate(timeout=600)
    assert rpi.returncode == 0, out
    assert (work / "rpi4b" / "model.so").is_file()
    assert json.loads((work / "rpi4b" / "artifact.json").read_text())["target"]["name"] == "rpi4b"
