"""Hardware targets, read from declarative files in ``targets/`` (one TOML file per target).

Adding a board is adding a file. A target file names the TVM target (as a dict; TVM 0.27 rejects
``"llvm -mtriple=..."`` strings), the TVM device kind, the RPC key, and how to export the library.
The value ``"native"`` stands for what this machine detects (its CPU, its core count);
``$EDGE_MNV2_NATIVE_CPU`` names another CPU for it (see :func:`native_cpu`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

from edge_mnv2.errors import EdgeMnv2Error, UnknownTargetError
from edge_mnv2.remote import runtime_threads
from edge_mnv2.resources import TARGETS_ENV, chosen_by, data_dir  # noqa: F401 (TARGETS_ENV: imported from here too)


def targets_dir() -> Path:
    """The folder target files are read from (``$EDGE_MNV2_TARGETS``, else the project's ``targets/``: see
    :mod:`edge_mnv2.resources`)."""
    return data_dir("targets")


EXEC_MODES = ("bytecode", "compiled")  # relax.build's exec_mode


def check_exec_mode(mode: str, where: str) -> str:
    """``mode`` if it is one of ``EXEC_MODES``; else an error naming ``where`` it was given."""
    if mode not in EXEC_MODES:
        raise UnknownTargetError(
            f"{where} = {mode!r} is not an exec mode; use one of {', '.join(map(repr, EXEC_MODES))}"
        )
    return mode


@dataclass(frozen=True)
class TargetSpec:
    """A target as its file describes it."""

    name: str
    description: str
    tvm: dict
    device: str = "cpu"
    rpc_key: str = ""
    export: dict = field(default_factory=dict)
    emulate: dict = field(default_factory=dict)  # how to emulate the device (see remote/emulator.py)
    micro: dict = field(default_factory=dict)  # a microcontroller board: CPU, memory, UART (see micro/)
    flash: dict = field(default_factory=dict)  # how firmware reaches the board: qemu or a flasher
    cuda: dict = field(default_factory=dict)  # a CUDA target's notes (the board's JetPack, ...)
    tuning: dict = field(default_factory=dict)  # how new tuning logs are made (weight_prepack, ...)
    path: Path | None = None

    @property
    def is_micro(self) -> bool:
        """A microcontroller board: compiled to C and firmware, measured over a serial link."""
        return bool(self.micro)

    def resolved_tvm(self) -> dict:
        """The TVM target dict with ``"native"`` values replaced by what this machine detects."""
        return _resolve_native(self.tvm)

    def tvm_target(self):
        """The ``tvm.target.Target`` to compile for."""
        import tvm

        return tvm.target.Target(self.resolved_tvm())

    @property
    def export_format(self) -> str:
        return self.export.get("format", "so")

    @property
    def exec_mode(self) -> str:
        """How the Relax VM runs the model's steps: "bytecode" (interpreted) or "compiled" (to machine code;
        a GPU build tuned without prepacked weights goes through MetaSchedule's ``compile_relax`` and
        stays bytecode)."""
        return self.export.get("exec_mode", "bytecode")

    def with_exec_mode(self, mode: str) -> TargetSpec:
        """This target with its ``exec_mode`` set to ``mode`` (``compile --exec-mode``)."""
        return replace(self, export={**self.export, "exec_mode": check_exec_mode(mode, "--exec-mode")})

    @property
    def cross_compiler(self) -> str | None:
        return self.export.get("cross_compiler") or None


NATIVE_CPU_ENV = "EDGE_MNV2_NATIVE_CPU"


def native_cpu() -> str:
    """The LLVM CPU name ``mcpu = "native"`` stands for: ``$EDGE_MNV2_NATIVE_CPU`` when set, else this
    machine's CPU as LLVM detects it.

    The variable builds here for another CPU of this machine's architecture, as if on it: e.g.
    ``znver3`` for a fleet of AVX2-only machines (schedules, int8 kernels, the tuning log chosen follow
    its features). A build for features this machine lacks does not run here.
    """
    from tvm.target import codegen

    chosen = os.environ.get(NATIVE_CPU_ENV, "").strip()
    if not chosen:
        return codegen.llvm_get_system_cpu()
    if not codegen.llvm_is_valid_cpu(chosen, codegen.llvm_get_system_triple()):
        raise EdgeMnv2Error(
            f"{NATIVE_CPU_ENV}={chosen!r} is not a CPU LLVM knows for {codegen.llvm_get_system_triple()}: "
            f"name one such as znver3, skylake or icelake-server, or unset it to build for this machine's "
            f"{codegen.llvm_get_system_cpu()}"
        )
    return chosen


def _resolve_native(table: dict) -> dict:
    resolved = dict(table)
    if resolved.get("mcpu") == "native":
        resolved["mcpu"] = native_cpu()
    if resolved.get("num-cores") == "native":
        resolved["num-cores"] = runtime_threads.physical_cores()  # the threads the runtime gets
    if resolved.get("arch") == "native" and resolved.get("kind") == "cuda":
        from edge_mnv2.compile.cuda import local_architecture

        resolved["arch"] = local_architecture()
    if isinstance(resolved.get("host"), dict):
        resolved["host"] = _resolve_native(resolved["host"])
    return resolved


def list_targets() -> list[str]:
    """Names of the targets that have a file."""
    folder = targets_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_target(name_or_path: str | Path) -> TargetSpec:
    """Read a target by name (``targets/<name>.toml``) or by the path of a TOML file."""
    candidate = Path(name_or_path)
    path = candidate if candidate.suffix == ".toml" else targets_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        variable = chosen_by("targets")
        hint = f"; ${variable} chose it: unset it or point it at a folder of target files" if variable else ""
        valid = ", ".join(list_targets()) or f"none (no .toml files in {targets_dir()}{hint})"
        raise UnknownTargetError(f"unknown target {str(name_or_path)!r}; valid targets: {valid}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UnknownTargetError(f"target file {str(path)!r} is not valid TOML: {exc}") from exc
    for key in ("name", "tvm"):
        if key not in data:
            raise UnknownTargetError(f"target file {str(path)!r} lacks the required key {key!r}")
    if not isinstance(data["tvm"], dict) or "kind" not in data["tvm"]:
        raise UnknownTargetError(f"target file {str(path)!r}: [tvm] must be a table with a 'kind'")
    check_exec_mode(
        data.get("export", {}).get("exec_mode", "bytecode"), f"target file {str(path)!r}: [export] exec_mode"
    )
    return TargetSpec(
        name=data["name"],
        description=data.get("description", ""),
        tvm=data["tvm"],
        device=data.get("device", "cpu"),
        rpc_key=data.get("rpc_key", data["name"]),
        export=data.get("export", {}),
        emulate=data.get("emulate", {}),
        micro=data.get("micro", {}),
        flash=data.get("flash", {}),
        cuda=data.get("cuda", {}),
        tuning=data.get("tuning", {}),
        path=path,
    )
