"""The model a CLI argument names, as ONNX and as Relax: a registered model exported on the fly or an ONNX
file read, its input and output tensors, the name its tuning logs go by, and its import into TVM Relax.

Both ``compile`` and ``tuning`` start from here, so neither imports the other for it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import onnx

from edge_mnv2 import progress
from edge_mnv2.artifact import ONNX_FILE
from edge_mnv2.errors import CompileError, ModelFileError
from edge_mnv2.export import export_onnx, load_onnx, read_metadata
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import DEFAULT_SEED


def is_onnx_path(model_or_onnx: str | Path) -> bool:
    """Whether the CLI argument names a file rather than a registered model."""
    p = Path(model_or_onnx)
    return p.suffix.lower() == ".onnx" or p.exists() or "/" in str(model_or_onnx)


def tensor_info(value: onnx.ValueInfoProto, path: Path) -> dict:
    tt = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    if any(d is None or d <= 0 for d in dims):
        raise ModelFileError(
            f"{value.name!r} in {str(path)!r} has a dynamic shape {dims}; edge-mnv2 compiles "
            "static shapes only: export with a fixed input size"
        )
    dtype = str(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
    return {"name": value.name, "shape": dims, "dtype": dtype}


def relax_module(proto: onnx.ModelProto):
    """Import an ONNX model as a Relax IRModule with weights bound as constants."""
    from tvm.relax.frontend.onnx import from_onnx

    try:
        return from_onnx(proto, keep_params_in_input=False)
    except Exception as exc:
        raise CompileError(
            f"TVM cannot import this ONNX model: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc


def load_source(
    model_or_onnx: str | Path, checkpoint=None, seed: int = DEFAULT_SEED
) -> tuple[onnx.ModelProto, str | None]:
    """The ONNX model a CLI argument names (a registered model is exported on the fly) and its name."""
    if is_onnx_path(model_or_onnx):
        proto = load_onnx(model_or_onnx)
        return proto, log_name(proto, model_or_onnx)
    get_spec(str(model_or_onnx))
    with tempfile.TemporaryDirectory() as tmp:
        with progress.stage(f"exporting {model_or_onnx} to ONNX"):
            export_onnx(str(model_or_onnx), Path(tmp) / "model.onnx", checkpoint=checkpoint, seed=seed)
        return load_onnx(Path(tmp) / "model.onnx"), str(model_or_onnx)


def stage_onnx(
    model_or_onnx: str | Path, staging: Path, checkpoint=None, seed: int = DEFAULT_SEED
) -> tuple[Path, onnx.ModelProto]:
    """The artifact's ``model.onnx`` in ``staging``: the given file copied, or the registered model exported."""
    onnx_path = staging / ONNX_FILE
    if is_onnx_path(model_or_onnx):
        shutil.copyfile(model_or_onnx, onnx_path)
    else:
        with progress.stage(f"exporting {model_or_onnx} to ONNX"):
            export_onnx(str(model_or_onnx), onnx_path, checkpoint=checkpoint, seed=seed)
    return onnx_path, load_onnx(onnx_path)


def log_name(proto: onnx.ModelProto, source: str | Path) -> str:
    """The name tuning logs go by: the model recorded at export, else the ONNX file's stem."""
    return read_metadata(proto).get("model") or Path(source).stem
