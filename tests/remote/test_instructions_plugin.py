"""The instruction-counting qemu-user plugin on a guest whose instruction counts are known exactly.

Needs the host's gcc, aarch64-linux-gnu-gcc and qemu-aarch64 (``make setup`` installs them); a few seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.emulator import CACHE_ENV
from edge_mnv2.remote.instructions.plugin import (
    CLASSES,
    MARKER_FD,
    SOURCE,
    build_plugin,
    plugin_option,
    read_exit,
    read_regions,
)

GUEST_SOURCE = Path(__file__).parent / "data" / "known_length.S"
N = int(re.search(r"\.equ ITERATIONS, (\d+)", GUEST_SOURCE.read_text()).group(1))
# Inside each region besides the loop: the loop count's movz/movk (2) and the end marker's own
# movz/movk/mov/mov/mov/svc (6), all integer; the begin marker's instructions are outside.
REGION_EXTRA = 2 + 6
EXPECTED_MIX = {
    "integer": 2 * N + REGION_EXTRA,  # add x, subs
    "branch": N,  # b.ne
    "load_store": N,  # ldr x
    "simd_fp_load_store": N,  # ldr q
    "vector128": N,  # add v.4s
    "vector64": N,  # add v.8b
    "scalar_fp": N,  # fadd s
    "vector_fma": 3 * N,  # fmla .4s, fmla .2s, fmla .4s by element
    "scalar_fma": N,  # fmadd s
}
EXPECTED_LANES = 10 * N  # 4 + 2 + 4 per iteration


def exit_total(regions: int) -> int:
    """The guest's whole instruction count: 3 before the regions, per region its begin marker (6), the
    region and the subs/b.ne of the region loop (2), then 3 to exit."""
    return 3 + regions * (6 + sum(EXPECTED_MIX.values()) + 2) + 3


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return build_plugin(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> Path:
    """known_length.S as a static aarch64 executable."""
    exe = tmp_path_factory.mktemp("guest") / "known_length"
    subprocess.run(
        ["aarch64-linux-gnu-gcc", "-nostdlib", "-static", "-o", str(exe), str(GUEST_SOURCE)],
        check=True,
        capture_output=True,
        text=True,
    )
    return exe


def run_qemu(args: list[str], qemu: tuple[str, ...] = ("qemu-aarch64", "-cpu", "cortex-a72")):
    """qemu-user (by default the emulated Raspberry Pi 4's CPU) with these arguments; its exit and output."""
    return subprocess.run([*qemu, *args], check=False, capture_output=True, text=True, timeout=120)


def test_one_region_counts_each_class_exactly(plugin, guest, tmp_path):
    out = tmp_path / "counts.jsonl"
    done = run_qemu([*plugin_option(plugin, out), str(guest)])
    assert done.returncode == 0, done.stderr
    [region] = read_regions(out)
    assert region.mix == EXPECTED_MIX
    assert list(region.mix) == list(CLASSES)
    assert region.total == sum(region.mix.values()) == 12 * N + REGION_EXTRA
    assert region.vector_fma_lanes == EXPECTED_LANES
    whole = read_exit(out)
    assert whole is not None and whole.total == sum(whole.mix.values())
    assert whole.total >= region.total and whole.total == exit_total(1)
    assert whole.vector_fma_lanes == EXPECTED_LANES


def test_two_regions_give_two_lines(plugin, guest, tmp_path):
    # A comma in the path checks plugin_option's escaping for qemu's option syntax (",," is a comma).
    out = tmp_path / "two,regions.jsonl"
    done = run_qemu([*plugin_option(plugin, out), str(guest), "again"])  # argc 2: two regions
    assert done.returncode == 0, done.stderr
    regions = read_regions(out)
    assert len(regions) == 2
    assert all(r.mix == EXPECTED_MIX and r.vector_fma_lanes == EXPECTED_LANES for r in regions)
    assert len(out.read_text().splitlines()) == 3  # two regions and the exit line
    assert read_exit(out).total == exit_total(2)


def test_other_marker_descriptor_sees_no_region(plugin, guest, tmp_path):
    out = tmp_path / "counts.jsonl"
    done = run_qemu([*plugin_option(plugin, out, marker=MARKER_FD + 1), str(guest)])
    assert done.returncode == 0, done.stderr
    assert read_regions(out) == []
    assert read_exit(out).total == exit_total(1)


def test_missing_out_makes_qemu_fail(plugin, guest, tmp_path):
    done = run_qemu(["-plugin", str(plugin), str(guest)])
    assert done.returncode != 0
    assert "out=PATH is required" in done.stderr


def test_non_aarch64_guest_is_refused(plugin, tmp_path):
    out = tmp_path / "counts.jsonl"
    done = run_qemu([*plugin_option(plugin, out), "/bin/true"], qemu=("qemu-x86_64",))
    assert done.returncode != 0
    assert "AArch64 guests only" in done.stderr and not out.exists()


def test_build_plugin_is_cached(plugin):
    before = plugin.stat()
    again = build_plugin(plugin.parent.parent)
    assert again == plugin
    after = again.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rebuilt
    assert re.fullmatch(r"insn_count-[0-9a-f]{12}\.so", plugin.name)
    assert [p.name for p in plugin.parent.iterdir()] == [plugin.name]  # no temporary left behind


def test_build_without_gcc_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no gcc on it
    with pytest.raises(DeviceError, match="make setup"):
        build_plugin(tmp_path / "cache")
    assert SOURCE.is_file() and not (tmp_path / "cache" / "qemu-plugins").exists()


def test_module_main_builds_and_prints_the_path(plugin):
    env = {**os.environ, CACHE_ENV: str(plugin.parent.parent)}
    done = subprocess.run(
        [sys.executable, "-m", "edge_mnv2.remote.instructions.plugin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == str(plugin)
