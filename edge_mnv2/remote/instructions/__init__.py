"""Counting guest instructions on emulated CPUs (qemu-user plugin)."""
