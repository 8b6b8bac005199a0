"""One handler per ``edge-mnv2`` command: call the package's function, print what it did, return the exit code.

The package modules are imported inside each handler so that ``--help`` and a mistyped option answer
without loading PyTorch or TVM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge_mnv2 import progress

if TYPE_CHECKING:
    from edge_mnv2.bench.measure import BenchSettings


def cmd_models(args: argparse.Namespace) -> int:
    """``models``: the registry as a table or JSON."""
    from edge_mnv2.bench.metrics import headline_metric
    from edge_mnv2.models.catalogue import catalogue
    from edge_mnv2.models.mobilenet_v2 import format_width

    rows = catalogue()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<30} {'width':>5} {'res':>4} {'classes':>7} {'params (M)':>10} {'MAdds (M)':>10}  weights")
    for r in rows:
        w = r["weights"]
        weights = f"trained on {w['dataset']}, {headline_metric(w)}" if w else "random (seeded)"
        print(
            f"{r['name']:<30} {format_width(r['width']):>5} {r['resolution']:>4} {r['classes']:>7} "
            f"{r['params'] / 1e6:>10.2f} {r['madds'] / 1e6:>10.1f}  {weights}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: a model to ONNX, checked against ONNX Runtime."""
    from edge_mnv2.export import export_onnx
    from edge_mnv2.models import get_spec

    get_spec(args.model)  # a bad name fails before any work
    output = args.output or Path(f"{args.model}.onnx")
    with progress.stage(f"exporting {args.model} to {output}"):
        result = export_onnx(args.model, output, checkpoint=args.checkpoint, seed=args.seed, opset=args.opset)
    print(
        f"{result.path}: opset {result.opset}, input {result.metadata['input_name']} "
        f"{list((1, 3, result.metadata['resolution'], result.metadata['resolution']))}, "
        f"ONNX Runtime vs PyTorch max abs error {result.max_abs_error:.2e}"
    )
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    """``compile``: a model or ONNX file into an artifact for a target."""
    from edge_mnv2.compile.pipeline import compile_model

    artifact = compile_model(
        args.model,
        args.target,
        args.output,
        checkpoint=args.checkpoint,
        seed=args.seed,
        use_tuning=not args.no_tuning_log,
        quantize=args.quantize,
        calibration=args.calibration,
        exec_mode=args.exec_mode,
    )
    quant = artifact.quantization
    if quant:
        print(
            f"int8 ({quant.kernels} kernels): weights {quant.weight_bytes['total']:,} B = "
            f"{quant.weight_ratio * 100:.1f}% of fp32's {quant.fp32_weight_bytes:,} B; stored in the "
            f"artifact {quant.stored_bytes:,} B = {quant.stored_ratio * 100:.1f}%; "
            f"calibrated on {quant.calibration['images']} {quant.calibration['data']} images"
        )
    files = artifact.metadata["files"]
    if artifact.is_micro:
        micro = artifact.micro
        print(
            f"{artifact.directory}: {files['firmware']['path']} for {artifact.target_name}: {micro.code}"
            f", {micro.calls} steps, arena {micro.arena_bytes:,} B (one buffer per tensor: "
            f"{micro.unshared_arena_bytes:,} B), flash {micro.memory['flash_total']:,} B, "
            f"RAM {micro.memory['ram_total']:,} B"
        )
        return 0
    print(
        f"{artifact.directory}: {files['library']['path']} for {artifact.target_name} "
        f"({artifact.target.tvm}), sha256 {files['library']['sha256'][:16]}…"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``train``: a model with the paper's recipe; Ctrl-C leaves a state to resume from."""
    from edge_mnv2.bench.metrics import headline_metric
    from edge_mnv2.models import get_spec
    from edge_mnv2.training.train import TrainConfig, metrics_path, state_path, train

    get_spec(args.model)
    cfg = TrainConfig(
        model=args.model,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        train_size=args.train_size,
        val_size=args.val_size,
        seed=args.seed,
        init_backbone=args.init_backbone,
    )
    output = args.output or Path("checkpoints") / f"{args.model}.{Path(args.data).name}.pt"
    started = time.perf_counter()
    try:
        last = train(cfg, output, resume=args.resume)
    except KeyboardInterrupt:
        print(
            f"edge-mnv2: interrupted; state saved to {state_path(output)}, continue with the same command and --resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"{output}: {headline_metric(last)} after {last.get('epoch', 0)} epochs "
        f"({time.perf_counter() - started:.0f} s); log {metrics_path(output)}"
    )
    return 0


def _serve_until_interrupted(message: str, what: str) -> None:
    """Say where a service is, then wait for Ctrl-C (the message is inside the try: no window for a race)."""
    try:
        print(message, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(f"\nstopping {what}", file=sys.stderr)


def cmd_tracker(args: argparse.Namespace) -> int:
    """``tracker``: TVM's RPC tracker until Ctrl-C."""
    from edge_mnv2.remote.tracker import LocalTracker

    with LocalTracker(args.host, args.port) as tracker:
        _serve_until_interrupted(
            f"RPC tracker listening on {tracker.host}:{tracker.port}. Register a device with\n"
            f"  python -m tvm.exec.rpc_server --tracker {tracker.host}:{tracker.port} --key KEY\n"
            f"or `edge-mnv2 device emulate rpi4b --tracker {tracker.host}:{tracker.port}`; Ctrl-C stops it.",
            "the tracker",
        )
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    """``device prepare|emulate``: an emulator image, or TVM's RPC server on an emulated board until Ctrl-C."""
    from edge_mnv2.remote.address import parse_host_port
    from edge_mnv2.remote.emulator import EmulatedRPCServer, EmulatorRecipe, prepare
    from edge_mnv2.targets import load_target

    target = load_target(args.target)
    tracker = parse_host_port(args.tracker, "--tracker") if getattr(args, "tracker", None) else None
    image = prepare(EmulatorRecipe.from_target(target))
    if args.action == "prepare":
        print(f"{target.name}: emulator image ready in {image.root}")
        return 0
    server = EmulatedRPCServer(image, tracker=tracker, key=target.rpc_key, port=args.port)
    with progress.stage(f"starting TVM's RPC server on an emulated {target.name} ({image.recipe.cpu})"):
        server.start()
    try:
        where = (
            f"registered with the tracker {tracker[0]}:{tracker[1]} as key {target.rpc_key!r}"
            if tracker
            else f"bench with --rpc {server.host}:{server.port}"
        )
        _serve_until_interrupted(
            f"emulated {target.name} ({image.recipe.qemu} -cpu {image.recipe.cpu}) serving on "
            f"{server.host}:{server.port}; {where}. Timings under emulation are not device timings. "
            "Ctrl-C stops it.",
            f"the emulated {target.name}",
        )
    finally:
        server.stop()
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """``tune``: MetaSchedule into the model's tuning log, on the host or a tracker's device."""
    from edge_mnv2.remote.address import device_address
    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning import tune_model

    target = load_target(args.target)
    address = device_address(None, args.tracker, args.key) if args.tracker or args.key else None
    try:
        result = tune_model(
            args.model,
            target,
            args.trials,
            tracker=address,
            checkpoint=args.checkpoint,
            quantize=args.quantize,
            calibration=args.calibration,
            weight_prepack=args.weight_prepack,
            seed_from=args.seed_from,
            seed_top=args.seed_top,
            cache_flush=args.cache_flush,
            layout=args.layout,
            focus=args.tasks,
            schedule_library=args.schedule_library,
            population=args.population,
        )
    except KeyboardInterrupt:  # before or after MetaSchedule runs (during it, tuning.run exits by itself)
        from edge_mnv2.tuning import INTERRUPTED_MESSAGE

        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return 130
    estimate = f"{result.estimated_ms:.2f} ms" if result.estimated_ms is not None else "n/a (not all tasks tuned)"
    seeded = f", {result.seeded} of them from {result.seeded_from}" if result.seeded_from else ""
    seeded += f", {result.library} hand-written" if result.library else ""
    print(
        f"{result.log}: {result.trials_after} trials ({result.trials_after - result.trials_before} new{seeded}), "
        f"{result.covered} of {result.tasks} tasks tuned, MetaSchedule's latency estimate {estimate} "
        f"({result.seconds / 60:.1f} min)"
    )
    for f in result.focused:
        was = "untuned" if f.before_ms is None else f"{f.before_ms:.4f} ms"
        now = "n/a" if f.after_ms is None else f"{f.after_ms:.4f} ms"
        print(f"  {f.task} (x{f.weight}): {was} -> {now} in {f.trials} trials")
    return 0


def cmd_prune_log(args: argparse.Namespace) -> int:
    """``prune-log``: keep a tuning log's best records of each task."""
    from edge_mnv2.tuning import prune_log

    before, after = prune_log(args.log, args.keep)
    size = sum(f.stat().st_size for f in args.log.iterdir() if f.is_file()) / 1e6
    print(
        f"{args.log}: kept {after} of {before} records (the best {args.keep} of each task), {size:.1f} MB; "
        f"tune still counts the {before - after} dropped as trials spent"
    )
    return 0


def bench_settings(args: argparse.Namespace) -> BenchSettings:
    """The measuring options (bench and demo) as :class:`~edge_mnv2.bench.measure.BenchSettings`."""
    from edge_mnv2.bench.measure import BenchSettings

    return BenchSettings(
        images=args.images,
        data=args.data,
        warmup=args.warmup,
        repeat=args.repeat,
        rounds=args.rounds,
        peers=not args.no_peers,
        timeout=args.timeout,
        instructions=not args.no_instructions,
        count_runs=args.count_runs,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """``bench``: an artifact on its device (TVM RPC, or a board's serial link), as a table and JSON."""
    from edge_mnv2.bench.device import bench_on, choose_device
    from edge_mnv2.bench.report import format_table, write_json

    device = choose_device(
        args.artifact,
        rpc=args.rpc,
        tracker=args.tracker,
        key=args.key,
        baseline=args.baseline,
        target=args.target,
        port=args.port,
    )
    if args.per_layer and device is not None:  # fail before measuring, not after
        from edge_mnv2.artifact import load_artifact
        from edge_mnv2.bench.layer_profile import check_profilable
        from edge_mnv2.errors import EdgeMnv2Error

        if device.kind != "local":
            raise EdgeMnv2Error(
                f"--per-layer times a build on this machine, not on {device.describe()}: TVM 0.27's "
                "Relax VM has no profiler that reports kernels over RPC; drop --per-layer there"
            )
        check_profilable(load_artifact(args.artifact))
    report = bench_on(
        args.artifact,
        device,
        bench_settings(args),
        baseline=args.baseline,
        target=args.target,
        port=args.port,
        failure_report=args.json,
    )
    if args.per_layer:
        from edge_mnv2.artifact import load_artifact
        from edge_mnv2.bench.layer_profile import plot_layers, profile_layers

        if device is not None:
            report["per_layer"] = profile_layers(load_artifact(args.artifact))
        elif not report.get("per_layer"):
            from edge_mnv2.errors import DeviceError

            raise DeviceError(
                "the board's firmware keeps no per-step profile (built before edge-mnv2 added it): "
                f"compile {args.artifact} again and flash it, then bench --per-layer"
            )
        where = report["device"].get("key") or report["target"]["name"]
        plot_layers(
            report["per_layer"], args.per_layer, f"{report.get('model') or args.artifact} on {where}: per layer"
        )
    print(format_table(report))
    if args.per_layer:
        print(f"\nper-layer chart: {args.per_layer}")
    if args.json:
        print(f"\nreport: {write_json(report, args.json)}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``sweep``: every variant of the grid compiled and benched; sweep.csv, sweep.json and sweep.png."""
    from edge_mnv2.sweep.run import sweep

    sweep(
        args.target,
        args.widths,
        args.resolutions,
        args.output,
        rpc=args.rpc,
        tracker=args.tracker,
        key=args.key,
        port=args.port,
        quantize=args.quantize,
        images=args.images,
        repeat=args.repeat,
    )
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    """``flash``: firmware onto its board; an emulated board runs under qemu until Ctrl-C."""
    from edge_mnv2.micro.flash import flash, load_firmware
    from edge_mnv2.micro.qemu import EmulatedBoard

    artifact, target = load_firmware(args.artifact, args.target)
    board = flash(artifact.firmware_path, target, args.port)
    if not isinstance(board, EmulatedBoard):
        print(
            f"flashed {target.name}; its serial port is {board.url}\n"
            f"  edge-mnv2 bench {args.artifact} --target {target.name} --port {board.url}"
        )
        return 0
    try:
        print(
            f"{target.name} is running {artifact.firmware_path} under qemu; its UART is {board.url}\n"
            f"  edge-mnv2 bench {args.artifact} --target {target.name} --port {board.url}\n"
            "Ctrl-C stops the board.",
            flush=True,
        )
        board.wait()
        print("edge-mnv2: the emulated board stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: export, compile and bench a model, then a trained one, on the local RPC device."""
    from edge_mnv2.demo import run_demo

    trained = None if args.trained == "none" else args.trained
    run_demo(args.model, trained, Path(args.output), bench_settings(args))
    return 0
