"""The compiled artifact: a folder holding the library, the ONNX it came from, and ``artifact.json``.

Artifacts are written through a staging folder and moved into place at the end, so an interrupted or
failed build leaves nothing half-written in the output folder.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from edge_mnv2.artifact_sections import MicroInfo, QuantizationInfo, TargetInfo, TensorSpec
from edge_mnv2.errors import ArtifactError
from edge_mnv2.models.weights import file_sha256

METADATA_FILE = "artifact.json"
ONNX_FILE = "model.onnx"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Artifact:
    """A compiled model on disk, as ``artifact.json`` describes it."""

    directory: Path
    metadata: dict

    @property
    def library_path(self) -> Path:
        return self.directory / self.metadata["files"]["library"]["path"]

    @property
    def is_micro(self) -> bool:
        """Built for a microcontroller: firmware and generated C instead of a shared library."""
        return self.metadata.get("kind") == "micro"

    @property
    def firmware_path(self) -> Path:
        return self.directory / self.metadata["files"]["firmware"]["path"]

    @property
    def onnx_path(self) -> Path:
        return self.directory / self.metadata["files"]["onnx"]["path"]

    @property
    def model_name(self) -> str | None:
        return self.model_metadata.get("model")

    @cached_property
    def input(self) -> TensorSpec:
        return TensorSpec.from_dict(self.metadata["input"])

    @cached_property
    def output(self) -> TensorSpec:
        return TensorSpec.from_dict(self.metadata["output"])

    @cached_property
    def target(self) -> TargetInfo:
        return TargetInfo.from_dict(self.metadata["target"])

    @cached_property
    def micro(self) -> MicroInfo | None:
        """The microcontroller build's figures, or None for a CPU/CUDA library."""
        return MicroInfo.from_dict(self.metadata["micro"]) if self.is_micro else None

    @cached_property
    def quantization(self) -> QuantizationInfo | None:
        quant = self.metadata.get("quantization")
        return QuantizationInfo.from_dict(quant) if quant else None

    @property
    def model_metadata(self) -> dict:
        """What export recorded about the model (registry entry, preprocessing, task); {} for a foreign ONNX."""
        return self.metadata.get("model") or {}

    @property
    def task(self) -> str:
        return self.model_metadata.get("task", "classification")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    @property
    def input_dtype(self) -> str:
        return self.input.dtype

    @property
    def target_name(self) -> str:
        return self.target.name

    def verify(self) -> None:
        """Check that every file the metadata names is there and has the recorded sha256."""
        for role, entry in self.metadata["files"].items():
            path = self.directory / entry["path"]
            if not path.is_file():
                raise ArtifactError(
                    f"artifact {str(self.directory)!r} lacks its {role} file {entry['path']!r}; compile it again"
                )
            if file_sha256(path) != entry["sha256"]:
                raise ArtifactError(
                    f"{role} file {str(path)!r} does not match the sha256 in {METADATA_FILE} "
                    "(changed since compile); compile it again"
                )


def load_artifact(path: str | Path) -> Artifact:
    """Read an artifact from its folder (or its ``artifact.json``)."""
    path = Path(path)
    meta_path = path if path.name == METADATA_FILE else path / METADATA_FILE
    if not meta_path.is_file():
        hint = "" if path.exists() else " (no such file or folder)"
        raise ArtifactError(
            f"no compiled artifact at {str(path)!r}{hint}; create one with "
            "`edge-mnv2 compile MODEL --target host -o DIR`"
        )
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{str(meta_path)!r} is not valid JSON ({exc}); compile the model again") from exc
    if not isinstance(metadata, dict) or metadata.get("schema") != SCHEMA_VERSION or "files" not in metadata:
        raise ArtifactError(
            f"{str(meta_path)!r} is not an edge-mnv2 artifact of schema {SCHEMA_VERSION}; compile the model again"
        )
    return Artifact(directory=meta_path.parent, metadata=metadata)


@contextlib.contextmanager
def staged_output(output_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success move its files into ``output_dir``.

    On failure or interruption the staging folder is removed, and so is ``output_dir`` if this
    call created it.
    """
    output_dir = Path(output_dir)
    created = not output_dir.exists()
    if output_dir.exists() and not output_dir.is_dir():
        raise ArtifactError(f"output {str(output_dir)!r} exists and is not a folder; choose another -o")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent))
    try:
        yield staging
        output_dir.mkdir(exist_ok=True)
        for item in staging.iterdir():
            target = output_dir / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            item.replace(target)
    except BaseException:
        if created and output_dir.exists():
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_metadata(directory: Path, metadata: dict) -> None:
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
