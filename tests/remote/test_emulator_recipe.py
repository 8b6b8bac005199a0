"""Emulator recipes read from target files: valid ones load, bad ones get one clear error."""

import pytest

from edge_mnv2.errors import DeviceError
from edge_mnv2.remote.emulator import EmulatorRecipe
from edge_mnv2.targets import load_target


def test_pi_recipe_loads():
    recipe = EmulatorRecipe.from_target(load_target("rpi4b"))
    assert (recipe.qemu, recipe.cpu, recipe.debian_arch) == ("qemu-aarch64", "cortex-a72", "arm64")


@pytest.mark.parametrize("table, needle", [
    (None, "no [emulate] recipe"),
    ({"kind": "qemu-system"}, "only qemu-user"),
    ({"qemu": "qemu-aarch64", "cpu": "cortex-a72", "debian_arch": "arm64", "wheel_platforms": [], "cpus": 4},
     "unknown keys ['cpus']"),
    ({"qemu": "qemu-aarch64"}, "lacks ['cpu', 'debian_arch', 'wheel_platforms']"),
])
def test_bad_recipes(table, needle):
    with pytest.raises(DeviceError) as info:
        EmulatorRecipe.from_table("myboard", table)
    assert needle in str(info.value) and "myboard" in str(info.value)
