"""Emulator recipes read from target files: valid ones load, bad ones get one clear error."""

import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.emulator import EmulatorRecipe, write_board_files
from edge_mnv2.targets import load_target


def test_pi_recipe_loads():
    recipe = EmulatorRecipe.from_target(load_target("rpi4b"))
    assert (recipe.qemu, recipe.cpu, recipe.debian_arch) == ("qemu-aarch64", "cortex-a72", "arm64")


@pytest.mark.parametrize(
    "table, needle",
    [
        (None, "no [emulate] recipe"),
        ({"kind": "qemu-system"}, "only qemu-user"),
        (
            {"qemu": "qemu-aarch64", "cpu": "cortex-a72", "debian_arch": "arm64", "wheel_platforms": [], "cpus": 4},
            "unknown keys ['cpus']",
        ),
        ({"qemu": "qemu-aarch64"}, "lacks ['cpu', 'debian_arch', 'wheel_platforms']"),
    ],
)
def test_bad_recipes(table, needle):
    with pytest.raises(DeviceError) as info:
        EmulatorRecipe.from_table("myboard", table)
    assert needle in str(info.value) and "myboard" in str(info.value)


@pytest.mark.parametrize(
    "target, part, feature", [("rpi4b", "0xd08", "crc32"), ("rpi5", "0xd0b", "asimddp"), ("rpi3b", "0xd03", "asimd")]
)
def test_the_guest_sees_the_boards_cpuinfo_and_cores(target, part, feature, tmp_path):
    """ONNX Runtime and XNNPACK read these (qemu's -L prefix redirects the reads into the sysroot)."""
    recipe = EmulatorRecipe.from_target(load_target(target))
    write_board_files(recipe, tmp_path)
    cpuinfo = (tmp_path / "proc" / "cpuinfo").read_text()
    assert cpuinfo.count("processor\t:") == 4 and cpuinfo.count(f"CPU part\t: {part}\n") == 4
    assert f" {feature}" in cpuinfo.split("Features\t:")[1].splitlines()[0]
    cpus = tmp_path / "sys" / "devices" / "system" / "cpu"
    assert (cpus / "possible").read_text() == "0-3\n" and (cpus / "cpu3" / "topology" / "core_id").read_text() == "3\n"


def test_a_recipe_without_cores_leaves_the_cpuinfo_alone(tmp_path):
    recipe = EmulatorRecipe.from_table(
        "plain", {"qemu": "qemu-aarch64", "cpu": "cortex-a72", "debian_arch": "arm64", "wheel_platforms": []}
    )
    write_board_files(recipe, tmp_path)
    assert not (tmp_path / "proc").exists()
