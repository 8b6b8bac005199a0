"""A validated view of a microcontroller target: the ``[micro]`` and ``[flash]`` tables of a
target file, checked once, with the compiler flags and Makefile variables they imply."""

from __future__ import annotations

from dataclasses import dataclass

from edge_mnv2.errors import BoardConfigError
from edge_mnv2.targets import TargetSpec

UART_DRIVERS = ("cmsdk", "stm32-usart", "nrf-uarte")
FLASH_METHODS = ("qemu", "openocd", "pyocd", "nrfjprog", "command")
FLOAT_ABIS = ("soft", "softfp", "hard")


@dataclass(frozen=True)
class MemoryRegion:
    """An address range of the board."""

    name: str
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class BoardConfig:
    """Everything the firmware build and the flasher need to know about one board."""

    name: str
    cpu: str
    fpu: str
    float_abi: str
    clock_hz: int
    stack_bytes: int
    uart: str
    uart_base: int
    baud: int
    flash: MemoryRegion
    ram: MemoryRegion
    boot: MemoryRegion | None  # where the vector table goes when not at the start of flash
    flash_method: str
    machine: str | None  # qemu -M, for method "qemu"
    flash_command: tuple[str, ...]
    port: str | None  # default serial port of a real board

    @property
    def emulated(self) -> bool:
        return self.flash_method == "qemu"

    def gcc_flags(self) -> list[str]:
        """The -mcpu/-mfpu/-mfloat-abi flags (as the firmware Makefile uses them)."""
        flags = [f"-mcpu={self.cpu}", "-mthumb"]
        if self.fpu == "none":
            return flags + ["-mfloat-abi=soft"]
        return flags + [f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}"]

    def make_vars(self) -> dict[str, str]:
        """Variables for ``firmware/Makefile`` (written to a project's board.mk)."""
        out = {
            "BOARD_NAME": self.name,
            "CPU": self.cpu,
            "FPU": self.fpu,
            "FLOAT_ABI": self.float_abi,
            "CLOCK_HZ": str(self.clock_hz),
            "STACK_BYTES": str(self.stack_bytes),
            "UART": self.uart,
            "UART_BASE": f"0x{self.uart_base:08x}",
            "BAUD": str(self.baud),
            "FLASH_ORIGIN": f"0x{self.flash.origin:08x}",
            "FLASH_SIZE": f"0x{self.flash.size:08x}",
            "RAM_ORIGIN": f"0x{self.ram.origin:08x}",
            "RAM_SIZE": f"0x{self.ram.size:08x}",
        }
        if self.boot is not None:
            out["BOOT_ORIGIN"] = f"0x{self.boot.origin:08x}"
            out["BOOT_SIZE"] = f"0x{self.boot.size:08x}"
        return out

    def region(self, name: str) -> MemoryRegion:
        """A region by its linker name (FLASH, RAM, BOOT)."""
        regions = {"FLASH": self.flash, "RAM": self.ram, "BOOT": self.boot}
        region = regions.get(name.upper())
        if region is None:
            raise KeyError(name)
        return region


def _fail(target: TargetSpec, problem: str) -> BoardConfigError:
    where = f"target file {str(target.path)!r}" if target.path else f"target {target.name!r}"
    return BoardConfigError(f"{where}: {problem}")


def _get(target: TargetSpec, table: dict, key: str, kind: type, section: str, default=None):
    if key not in table:
        if default is not None:
            return default
        raise _fail(target, f"[{section}] lacks the required key {key!r}")
    value = table[key]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _fail(target, f"[{section}] {key} must be an integer, got {value!r}")
    if kind is str and (not isinstance(value, str) or not value):
        raise _fail(target, f"[{section}] {key} must be a non-empty string, got {value!r}")
    return value


def _region(target: TargetSpec, memory: dict, name: str, required: bool = True) -> MemoryRegion | None:
    table = memory.get(name)
    if table is None:
        if required:
            raise _fail(target, f"[micro.memory.{name}] is missing: give its origin and size")
        return None
    if not isinstance(table, dict):
        raise _fail(target, f"[micro.memory.{name}] must be a table with origin and size")
    section = f"micro.memory.{name}"
    origin = _get(target, table, "origin", int, section)
    size = _get(target, table, "size", int, section)
    if size <= 0 or origin < 0 or origin + size > 1 << 32:
        raise _fail(target, f"[{section}] origin 0x{origin:x} size 0x{size:x} is not inside the 32-bit address space")
    return MemoryRegion(name.upper(), origin, size)


def board_config(target: TargetSpec) -> BoardConfig:
    """Check a micro target's ``[micro]`` and ``[flash]`` tables and return them as a BoardConfig."""
    micro = target.micro
    if not micro:
        raise _fail(
            target,
            "has no [micro] table: it is not a microcontroller board (see targets/mps3-an547.toml for one that is)",
        )
    cpu = _get(target, micro, "cpu", str, "micro")
    fpu = _get(target, micro, "fpu", str, "micro", default="none")
    float_abi = _get(target, micro, "float-abi", str, "micro", default="soft" if fpu == "none" else "hard")
    if float_abi not in FLOAT_ABIS:
        raise _fail(target, f"[micro] float-abi {float_abi!r} is not one of {', '.join(FLOAT_ABIS)}")
    if fpu == "none" and float_abi != "soft":
        raise _fail(target, f'[micro] fpu = "none" needs float-abi = "soft", not {float_abi!r}')
    clock_hz = _get(target, micro, "clock-hz", int, "micro")
    stack_bytes = _get(target, micro, "stack-bytes", int, "micro", default=16384)
    uart = _get(target, micro, "uart", str, "micro")
    if uart not in UART_DRIVERS:
        raise _fail(target, f"[micro] uart {uart!r} has no driver; valid: {', '.join(UART_DRIVERS)}")
    uart_base = _get(target, micro, "uart-base", int, "micro")
    baud = _get(target, micro, "baud", int, "micro", default=115200)
    if clock_hz <= 0 or stack_bytes <= 0 or baud <= 0:
        raise _fail(target, "[micro] clock-hz, stack-bytes and baud must be positive")
    memory = micro.get("memory")
    if not isinstance(memory, dict):
        raise _fail(target, "[micro.memory.flash] and [micro.memory.ram] are missing")
    flash_region = _region(target, memory, "flash")
    ram = _region(target, memory, "ram")
    boot = _region(target, memory, "boot", required=False)
    regions = [r for r in (flash_region, ram, boot) if r is not None]
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if a.origin < b.end and b.origin < a.end:
                raise _fail(target, f"memory regions {a.name.lower()} and {b.name.lower()} overlap")

    flash = target.flash
    if not flash:
        raise _fail(
            target,
            'has no [flash] table: give method = "qemu" (with machine) or a '
            "flasher (openocd, pyocd, nrfjprog) with its command",
        )
    method = _get(target, flash, "method", str, "flash")
    if method not in FLASH_METHODS:
        raise _fail(target, f"[flash] method {method!r} is not one of {', '.join(FLASH_METHODS)}")
    machine = None
    command: tuple[str, ...] = ()
    if method == "qemu":
        machine = _get(target, flash, "machine", str, "flash")
    else:
        raw = flash.get("command")
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            raise _fail(
                target,
                "[flash] command must be a list of strings, e.g. "
                '["openocd", "-f", "board/x.cfg", "-c", "program {elf} verify reset exit"]',
            )
        command = tuple(raw)
    port = flash.get("port")
    if port is not None and not isinstance(port, str):
        raise _fail(target, f'[flash] port must be a string such as "/dev/ttyACM0", got {port!r}')
    return BoardConfig(
        name=target.name,
        cpu=cpu,
        fpu=fpu,
        float_abi=float_abi,
        clock_hz=clock_hz,
        stack_bytes=stack_bytes,
        uart=uart,
        uart_base=uart_base,
        baud=baud,
        flash=flash_region,
        ram=ram,
        boot=boot,
        flash_method=method,
        machine=machine,
        flash_command=command,
        port=port,
    )
