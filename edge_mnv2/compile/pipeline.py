"""ONNX -> Relax -> ``tvm.compile`` for a target -> exported library plus ``artifact.json``."""

from __future__ import annotations

import contextlib
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import onnx

from edge_mnv2 import __version__, progress
from edge_mnv2.artifact import ONNX_FILE, SCHEMA_VERSION, Artifact, staged_output, write_metadata
from edge_mnv2.compile.frontend import is_onnx_path, load_source, log_name, relax_module, stage_onnx, tensor_info  # noqa: F401
from edge_mnv2.compile.relax_build import build
from edge_mnv2.errors import CompileError, ModelFileError
from edge_mnv2.export import load_onnx, read_metadata
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import DEFAULT_SEED, file_sha256
from edge_mnv2.targets import TargetSpec, load_target
from edge_mnv2.tuning.database import coverage, extract_tasks, open_database
from edge_mnv2.tuning.logs import PREPACK_KEY, detected_cpu, find_log, quantized_log_name, read_meta
from edge_mnv2.tuning.settings import log_layout, log_weight_prepack

# The ONNX side (is_onnx_path ... tensor_info) lives in frontend, which tuning starts from too; its names stay
# importable from here (load_source only for callers that import it from compile).

# The layout a CPU build without a tuning log computes in: the default schedule rules' (channels last).
DEFAULT_CPU_LAYOUT = "NHWC"


def tuning_for(mod, target: TargetSpec, model_name: str | None, log_root: Path | None = None, by_workload: bool = True):
    """The tuning log that fits (target, model), opened, with what it covers, and the module in the data
    layout the log was tuned in; (None, None, mod) if there is none. A model without a log of its name is
    looked up by workload in every log of a CPU target (``by_workload``; :mod:`edge_mnv2.tuning.lookup`)."""
    from edge_mnv2.compile import relax_layout

    cpu = detected_cpu(target)
    path = find_log(target.name, model_name, log_root, cpu=cpu)
    found_by = "name"
    try:
        if path is None:
            if not (by_workload and target.device == "cpu"):
                return None, None, mod
            from edge_mnv2.tuning.lookup import best_log, candidate_logs

            match = best_log(mod, target, candidate_logs(target.name, cpu, log_root))
            if match is None:
                return None, None, mod
            path, found_by, prepack, layout = match.path, "workload", match.weight_prepack, match.layout
            converted, covered, total = match.module, match.covered, match.tasks
            database = open_database(path)
        else:
            database = open_database(path)
            prepack = bool(log_weight_prepack(path))
            layout = log_layout(path) or relax_layout.DEFAULT
            with (
                progress.stage(f"converting to {layout}")
                if layout != relax_layout.DEFAULT
                else contextlib.nullcontext()
            ):
                converted = relax_layout.convert(mod, layout)
            tasks = extract_tasks(converted, target.tvm_target(), prepack)
            covered, total = coverage(database, tasks)
    except Exception as exc:  # a log must never break a build it does not fit: the default rules take over
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        print(
            f"warning: the tuning log {path or 'lookup'} cannot be applied to this build ({first}); using the "
            "default schedules instead",
            file=sys.stderr,
        )
        return None, None, mod
    mod = converted
    meta = read_meta(path)
    tuned_for = meta.get("tvm_target", {}).get("mcpu")
    here = target.resolved_tvm().get("mcpu")
    info = {
        "log": str(path),
        "covered_tasks": covered,
        "tasks": total,
        "records": meta.get("records"),
        "tuned_for": tuned_for,
        PREPACK_KEY: prepack,
        "layout": layout,
        "found_by": found_by,
    }
    if tuned_for and here and tuned_for != here:
        print(
            f"warning: the tuning log {path} was tuned on {tuned_for}; this build is for {here}, so its "
            "schedules may not fit this CPU (retune with `edge-mnv2 tune`)",
            file=sys.stderr,
        )
        info["cpu_mismatch"] = True
    return database, info, mod


def _cuda_code(library: Path, target: TargetSpec) -> dict:
    """What the library's CUDA code targets; a library without device code is an error, not an artifact."""
    from edge_mnv2.compile import cuda

    arches = sorted(set(cuda.cubin_architectures(library.read_bytes())))
    wanted = target.resolved_tvm()["arch"]
    if arches != [wanted]:
        raise CompileError(
            f"the {target.name} library holds CUDA code for {arches or 'no GPU architecture'}, "
            f"not {wanted}; TVM built CUDA source only (is nvcc working?)"
        )
    return {"arch": wanted, "cubins": arches, "nvcc": cuda.toolkit()[0], "format": "fatbin"}


def export_library(executable, path: Path, target: TargetSpec) -> None:
    """Write the executable as a shared library, with the target's cross compiler if it names one."""
    kwargs = {}
    if target.cross_compiler:
        from tvm.support import cc

        if shutil.which(target.cross_compiler) is None:
            raise CompileError(
                f"cross compiler {target.cross_compiler!r} for target {target.name!r} is not "
                "installed; run `make setup` (it installs the Debian toolchains)"
            )
        kwargs["fcompile"] = cc.cross_compiler(target.cross_compiler)
    executable.export_library(str(path), **kwargs)


def default_output_dir(model_or_onnx: str | Path, target: str) -> Path:
    stem = Path(model_or_onnx).stem if is_onnx_path(model_or_onnx) else str(model_or_onnx)
    return Path("build") / f"{stem}-{Path(target).stem}"


def compile_model(
    model_or_onnx: str | Path,
    target: str | Path = "host",
    output_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    use_tuning: bool = True,
    log_root: Path | None = None,
    quantize: str | None = None,
    calibration: str | None = None,
    exec_mode: str | None = None,
) -> Artifact:
    """Compile a registered model (exported first) or an ONNX file for ``target`` into ``output_dir``.

    A tuning log in ``tuning_logs/<target>/<model>/`` is applied unless ``use_tuning`` is False.
    ``exec_mode`` ("bytecode" or "compiled") overrides the target file's ``[export] exec_mode``.
    """
    import tvm

    target_spec = load_target(target)
    if exec_mode is not None:
        target_spec = target_spec.with_exec_mode(exec_mode)
    from_file = is_onnx_path(model_or_onnx)
    if target_spec.is_micro:
        from edge_mnv2.micro.pipeline import compile_micro

        if from_file:
            load_onnx(model_or_onnx)
        else:
            get_spec(str(model_or_onnx))
        out = Path(output_dir) if output_dir else default_output_dir(model_or_onnx, target_spec.name)
        return compile_micro(
            model_or_onnx,
            target_spec,
            out,
            checkpoint=checkpoint,
            seed=seed,
            quantize=quantize,
            calibration=calibration,
        )
    # Fail on bad input before anything is written.
    proto = load_onnx(model_or_onnx) if from_file else None
    if not from_file:
        get_spec(str(model_or_onnx))
    output_dir = Path(output_dir) if output_dir else default_output_dir(model_or_onnx, target_spec.name)
    started = time.perf_counter()
    with staged_output(output_dir) as staging:
        onnx_path, proto = stage_onnx(model_or_onnx, staging, checkpoint, seed)
        model_meta = read_metadata(proto)
        if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
            raise ModelFileError(
                f"{str(model_or_onnx)!r} has {len(proto.graph.input)} inputs and "
                f"{len(proto.graph.output)} outputs; edge-mnv2 compiles one-input, "
                "one-output models"
            )
        input_info = tensor_info(proto.graph.input[0], Path(model_or_onnx))
        output_info = tensor_info(proto.graph.output[0], Path(model_or_onnx))

        quantization = None
        if quantize:
            from edge_mnv2.quantize import kernels_for, quantized_module

            mod, quantization, _ = quantized_module(
                model_meta, quantize, calibration, tuple(input_info["shape"]), kernels_for(target_spec.tvm_target())
            )
            tuning_name = quantized_log_name(log_name(proto, model_or_onnx), quantize)  # its own kernels' log
        else:
            with progress.stage(f"importing into TVM Relax ({len(proto.graph.node)} ONNX nodes)"):
                mod = relax_module(proto)
            tuning_name = log_name(proto, model_or_onnx)
        database, tuning = None, None
        if use_tuning:  # a log tuned in another layout converts the module to it
            database, tuning, mod = tuning_for(mod, target_spec, tuning_name, log_root, by_workload=not quantize)
        if tuning:
            how = " (found by workload)" if tuning["found_by"] == "workload" else ""
            print(
                f"  applying tuning log {tuning['log']}{how}: {tuning['covered_tasks']} of {tuning['tasks']} "
                "tasks tuned",
                file=sys.stderr,
                flush=True,
            )
        elif target_spec.device == "cpu" and not quantize:
            # The default schedule rules are written for channels-last kernels (vectors across channels).
            from edge_mnv2.compile import relax_layout

            mod = relax_layout.convert(mod, DEFAULT_CPU_LAYOUT)
        gpu = target_spec.device == "cuda"
        if gpu:
            from edge_mnv2.compile import cuda

            cuda.check_architecture(
                target_spec.name, target_spec.resolved_tvm()["arch"], target_spec.cuda.get("jetpack")
            )
        with (
            progress.stage(f"compiling for {target_spec.name} ({target_spec.tvm_target()})"),
            cuda.nvcc_build() if gpu else contextlib.nullcontext(),
        ):
            prepacked: list[str] = []
            provenance: dict[str, dict] = {}
            executable = build(
                mod,
                target_spec,
                database,
                bool(tuning and tuning.get(PREPACK_KEY)),
                prepacked,
                provenance,
                tuning["log"] if tuning else None,
            )
            if tuning:
                tuning["prepacked_weights"] = len(prepacked)
        schedules = None
        if target_spec.device == "cpu":
            from edge_mnv2.schedules.apply import describe, summarize
            from edge_mnv2.schedules.isa import vector_isa

            schedules = dict(
                summarize(provenance, vector_isa(target_spec.tvm_target())),
                layout=tuning["layout"] if tuning else (None if quantize else DEFAULT_CPU_LAYOUT),
                kernels=provenance,
            )
            print(f"  schedules: {describe(schedules)}", file=sys.stderr, flush=True)
        library_name = f"model.{target_spec.export_format}"
        with progress.stage(f"exporting {library_name}"):
            export_library(executable, staging / library_name, target_spec)
        gpu_code = _cuda_code(staging / library_name, target_spec) if gpu else None

        metadata = {
            "schema": SCHEMA_VERSION,
            "model": model_meta or {"model": None, "source": str(model_or_onnx)},
            "input": input_info,
            "output": output_info,
            "preprocessing": model_meta.get("preprocessing"),
            "tuning": tuning,
            "schedules": schedules,
            "quantization": quantization,
            "cuda": gpu_code,
            "target": {
                "name": target_spec.name,
                "tvm": target_spec.resolved_tvm(),
                "device": target_spec.device,
                "rpc_key": target_spec.rpc_key,
                "cross_compiler": target_spec.cross_compiler,
                "emulate": target_spec.emulate,
                "exec_mode": target_spec.exec_mode,
            },
            "files": {
                "library": {"path": library_name, "sha256": file_sha256(staging / library_name)},
                "onnx": {"path": ONNX_FILE, "sha256": file_sha256(onnx_path)},
            },
            "versions": {
                "tvm": tvm.__version__,
                "edge_mnv2": __version__,
                "onnx": onnx.__version__,
                "python": platform.python_version(),
            },
            "build": {
                "host": platform.node(),
                "machine": platform.machine(),
                "seconds": round(time.perf_counter() - started, 2),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        }
        write_metadata(staging, metadata)
    from edge_mnv2.artifact import load_artifact

    return load_artifact(output_dir)
