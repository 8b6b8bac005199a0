"""Typed views of the sections of ``artifact.json`` that code reads (the JSON file stays the contract:
docs/report-keys.md). Each ``from_dict`` takes the section as written by compile, ignoring keys it does
not name, so older and newer artifacts load alike."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class TensorSpec:
    """The model's input or output: shape (batch first) and element type."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "TensorSpec":
        return cls(
            shape=tuple(int(d) for d in data["shape"]), dtype=data.get("dtype", "float32"), name=data.get("name")
        )

    @property
    def per_item(self) -> tuple[int, ...]:
        """The shape of one batch item."""
        return self.shape[1:]


@dataclass(frozen=True)
class TargetInfo:
    """Where the artifact runs: the target file's name, TVM target, device kind and how it is reached."""

    name: str
    tvm: str = ""
    device: str = "cpu"
    rpc_key: str | None = None
    cross_compiler: str | None = None
    emulate: dict | None = None
    exec_mode: str | None = None
    micro: dict | None = None
    flash: dict | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "TargetInfo":
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class MicroInfo:
    """A microcontroller build: its generated model, the executor's figures and the memory report."""

    model_id: int
    kernels: int
    calls: int
    weight_bytes: int
    arena_bytes: int
    unshared_arena_bytes: int
    directory: str = "model"
    project: str = "firmware"
    memory: dict = field(default_factory=dict)
    runtime: str = "tvm"  # "tvm" (TVM's C kernels) or "mnv2_nn" (edge-mnv2's int8 kernels)
    implementation: str | None = None  # mnv2_nn: "mve", "dsp" or "portable"
    macs: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "MicroInfo":
        return cls(**_known(cls, data))

    @property
    def code(self) -> str:
        """What computes the layers, in words."""
        return f"int8 kernels ({self.implementation})" if self.runtime == "mnv2_nn" else f"{self.kernels} C kernels"


@dataclass(frozen=True)
class QuantizationInfo:
    """``--quantize int8``: the scheme, its calibration, the kernels' layout and the stored bytes."""

    scheme: str
    calibration: dict
    kernels: str = "generic"
    weight_bytes: dict = field(default_factory=dict)
    fp32_weight_bytes: int = 0
    weight_ratio: float = 0.0
    stored_bytes: int = 0
    stored_ratio: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> "QuantizationInfo":
        return cls(**_known(cls, data))
