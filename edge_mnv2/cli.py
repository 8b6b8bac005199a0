"""The ``edge-mnv2`` command: a thin layer over the package's functions.

User mistakes (any :class:`EdgeMnv2Error`) print one line and exit 2; Ctrl-C exits 130 after each
stage has cleaned up what it was writing, and SIGTERM or SIGHUP do the same (:mod:`edge_mnv2.signals`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_mnv2 import __version__, progress, runtime_threads, signals
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.relax_layout import LAYOUTS
from edge_mnv2.targets import EXEC_MODES
from edge_mnv2.tuning.prune import DEFAULT_KEEP

DEMO_MODEL = "mobilenet_v2_1.0_224"
DEMO_TRAINED = "mobilenet_v2_0.35_96.shapes"  # shipped weights (edge_mnv2/pretrained/)


def _cmd_models(args: argparse.Namespace) -> int:
    import torch

    from edge_mnv2.models import get_spec, list_models
    from edge_mnv2.models.complexity import measure
    from edge_mnv2.models.mobilenet_v2 import format_width

    rows = []
    for name in progress.bar(list_models(), "counting", total=len(list_models())):
        spec = get_spec(name)
        with torch.device("meta"):   # shapes only: counting needs no weights and no arithmetic
            c = measure(spec.build(), spec.input_shape)
        row = {"name": name, "family": spec.family, "width": spec.width, "resolution": spec.resolution,
               "classes": spec.num_classes, "params": c.params, "madds": c.madds, "weights": None}
        if spec.pretrained is not None:
            row["weights"] = {"dataset": spec.pretrained.dataset, "file": spec.pretrained.path.name,
                              "command": spec.pretrained.command, **spec.pretrained.metrics}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<30} {'width':>5} {'res':>4} {'classes':>7} {'params (M)':>10} {'MAdds (M)':>10}  weights")
    for r in rows:
        w = r["weights"]
        weights = f"trained on {w['dataset']}, {_headline_metric(w)}" if w else "random (seeded)"
        print(f"{r['name']:<30} {format_width(r['width']):>5} {r['resolution']:>4} {r['classes']:>7} "
              f"{r['params'] / 1e6:>10.2f} {r['madds'] / 1e6:>10.1f}  {weights}")
    return 0


_METRIC_NAMES = (("val_top1", "val top-1"), ("val_map50", "val mAP@0.5"), ("val_miou", "val mIoU"))


def _headline_metric(metrics: dict) -> str:
    """The validation figure a model's task is judged by (top-1, mAP@0.5 or mIoU)."""
    for key, label in _METRIC_NAMES:
        if key in metrics:
            return f"{label} {metrics[key]:.2f}%"
    return "no validation figure"


def _cmd_export(args: argparse.Namespace) -> int:
    from edge_mnv2.export import export_onnx
    from edge_mnv2.models import get_spec

    get_spec(args.model)  # a bad name fails before any work
    output = args.output or Path(f"{args.model}.onnx")
    with progress.stage(f"exporting {args.model} to {output}"):
        result = export_onnx(args.model, output, checkpoint=args.checkpoint, seed=args.seed, opset=args.opset)
    print(f"{result.path}: opset {result.opset}, input {result.metadata['input_name']} "
          f"{list((1, 3, result.metadata['resolution'], result.metadata['resolution']))}, "
          f"ONNX Runtime vs PyTorch max abs error {result.max_abs_error:.2e}")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from edge_mnv2.compile import compile_model

    artifact = compile_model(args.model, args.target, args.output, checkpoint=args.checkpoint, seed=args.seed,
                             use_tuning=not args.no_tuning_log, quantize=args.quantize,
                             calibration=args.calibration, exec_mode=args.exec_mode)
    quant = artifact.metadata.get("quantization")
    if quant:
        print(f"int8 ({quant.get('kernels', 'generic')} kernels): weights {quant['weight_bytes']['total']:,} B = "
              f"{quant['weight_ratio'] * 100:.1f}% of fp32's {quant['fp32_weight_bytes']:,} B; stored in the "
              f"artifact {quant.get('stored_bytes', 0):,} B = {quant.get('stored_ratio', 0) * 100:.1f}%; "
              f"calibrated on {quant['calibration']['images']} {quant['calibration']['data']} images")
    files = artifact.metadata["files"]
    if artifact.is_micro:
        micro = artifact.metadata["micro"]
        print(f"{artifact.directory}: {files['firmware']['path']} for {artifact.target_name}: {micro['kernels']} "
              f"C kernels, {micro['calls']} steps, arena {micro['arena_bytes']:,} B (one buffer per tensor: "
              f"{micro['unshared_arena_bytes']:,} B), flash {micro['memory']['flash_total']:,} B, "
              f"RAM {micro['memory']['ram_total']:,} B")
        return 0
    print(f"{artifact.directory}: {files['library']['path']} for {artifact.target_name} "
          f"({artifact.metadata['target']['tvm']}), sha256 {files['library']['sha256'][:16]}…")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import time

    from edge_mnv2.models import get_spec
    from edge_mnv2.train import TrainConfig, metrics_path, state_path, train

    get_spec(args.model)
    cfg = TrainConfig(model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, lr_decay=args.lr_decay, warmup_epochs=args.warmup_epochs,
                      label_smoothing=args.label_smoothing, train_size=args.train_size, val_size=args.val_size,
                      seed=args.seed, init_backbone=args.init_backbone)
    output = args.output or Path("checkpoints") / f"{args.model}.{Path(args.data).name}.pt"
    started = time.perf_counter()
    try:
        last = train(cfg, output, resume=args.resume)
    except KeyboardInterrupt:
        print(f"edge-mnv2: interrupted; state saved to {state_path(output)}, continue with the same command "
              "and --resume", file=sys.stderr)
        return 130
    print(f"{output}: {_headline_metric(last)} after {last.get('epoch', 0)} epochs "
          f"({time.perf_counter() - started:.0f} s); log {metrics_path(output)}")
    return 0


def _serve_until_interrupted(message: str, what: str) -> None:
    """Say where a service is, then wait for Ctrl-C (the message is inside the try: no window for a race)."""
    import time

    try:
        print(message, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(f"\nstopping {what}", file=sys.stderr)


def _cmd_tracker(args: argparse.Namespace) -> int:
    from edge_mnv2.remote.tracker import LocalTracker

    with LocalTracker(args.host, args.port) as tracker:
        _serve_until_interrupted(
            f"RPC tracker listening on {tracker.host}:{tracker.port}. Register a device with\n"
            f"  python -m tvm.exec.rpc_server --tracker {tracker.host}:{tracker.port} --key KEY\n"
            f"or `edge-mnv2 device emulate rpi4b --tracker {tracker.host}:{tracker.port}`; Ctrl-C stops it.",
            "the tracker")
    return 0


def _emulator_image(target_name: str):
    from edge_mnv2.remote.emulator import EmulatorRecipe, prepare
    from edge_mnv2.targets import load_target

    return prepare(EmulatorRecipe.from_target(load_target(target_name)))


def _cmd_device(args: argparse.Namespace) -> int:
    from edge_mnv2.remote.address import parse_host_port
    from edge_mnv2.remote.emulator import EmulatedRPCServer
    from edge_mnv2.targets import load_target

    target = load_target(args.target)
    tracker = parse_host_port(args.tracker, "--tracker") if getattr(args, "tracker", None) else None
    image = _emulator_image(args.target)
    if args.action == "prepare":
        print(f"{target.name}: emulator image ready in {image.root}")
        return 0
    server = EmulatedRPCServer(image, tracker=tracker, key=target.rpc_key, port=args.port)
    with progress.stage(f"starting TVM's RPC server on an emulated {target.name} ({image.recipe.cpu})"):
        server.start()
    try:
        where = f"registered with the tracker {tracker[0]}:{tracker[1]} as key {target.rpc_key!r}" if tracker \
            else f"bench with --rpc {server.host}:{server.port}"
        _serve_until_interrupted(
            f"emulated {target.name} ({image.recipe.qemu} -cpu {image.recipe.cpu}) serving on "
            f"{server.host}:{server.port}; {where}. Timings under emulation are not device timings. "
            "Ctrl-C stops it.", f"the emulated {target.name}")
    finally:
        server.stop()
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from edge_mnv2.remote.address import device_address
    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning import tune_model

    target = load_target(args.target)
    address = device_address(None, args.tracker, args.key) if args.tracker or args.key else None
    try:
        result = tune_model(args.model, target, args.trials, tracker=address, checkpoint=args.checkpoint,
                            quantize=args.quantize, calibration=args.calibration,
                            weight_prepack=args.weight_prepack, seed_from=args.seed_from, seed_top=args.seed_top,
                            cache_flush=args.cache_flush, layout=args.layout, focus=args.tasks,
                            schedule_library=args.schedule_library)
    except KeyboardInterrupt:   # before or after MetaSchedule runs (during it, tuning.run exits by itself)
        from edge_mnv2.tuning import INTERRUPTED_MESSAGE

        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return 130
    estimate = f"{result.estimated_ms:.2f} ms" if result.estimated_ms is not None else "n/a (not all tasks tuned)"
    seeded = f", {result.seeded} of them from {result.seeded_from}" if result.seeded_from else ""
    seeded += f", {result.library} hand-written" if result.library else ""
    print(f"{result.log}: {result.trials_after} trials ({result.trials_after - result.trials_before} new{seeded}), "
          f"{result.covered} of {result.tasks} tasks tuned, MetaSchedule's latency estimate {estimate} "
          f"({result.seconds / 60:.1f} min)")
    for f in result.focused:
        was = "untuned" if f.before_ms is None else f"{f.before_ms:.4f} ms"
        now = "n/a" if f.after_ms is None else f"{f.after_ms:.4f} ms"
        print(f"  {f.task} (x{f.weight}): {was} -> {now} in {f.trials} trials")
    return 0


def _cmd_prune_log(args: argparse.Namespace) -> int:
    from edge_mnv2.tuning import prune_log

    before, after = prune_log(args.log, args.keep)
    size = sum(f.stat().st_size for f in args.log.iterdir() if f.is_file()) / 1e6
    print(f"{args.log}: kept {after} of {before} records (the best {args.keep} of each task), {size:.1f} MB; "
          f"tune still counts the {before - after} dropped as trials spent")
    return 0


def _bench_settings(args: argparse.Namespace):
    from edge_mnv2.bench import BenchSettings

    return BenchSettings(images=args.images, data=args.data, warmup=args.warmup, repeat=args.repeat, rounds=args.rounds,
                         peers=not args.no_peers, timeout=args.timeout, instructions=not args.no_instructions,
                         count_runs=args.count_runs)


def _cmd_bench(args: argparse.Namespace) -> int:
    from edge_mnv2.bench import bench_artifact
    from edge_mnv2.errors import DeviceError
    from edge_mnv2.remote.address import device_address
    from edge_mnv2.report import format_table, write_json

    if args.target or args.port or _is_firmware(args.artifact):
        if args.rpc or args.tracker or args.key or args.baseline:
            raise EdgeMnv2Error("--rpc/--tracker/--key/--baseline are for TVM RPC devices; firmware is measured "
                                "over its serial link (--target BOARD [--port PORT])")
        from edge_mnv2.micro.bench import bench_micro

        report = bench_micro(args.artifact, args.target, args.port, _bench_settings(args))
        print(format_table(report))
        if args.json:
            print(f"\nreport: {write_json(report, args.json)}")
        return 0
    address = device_address(args.rpc, args.tracker, args.key)
    try:
        report = bench_artifact(args.artifact, address, _bench_settings(args), args.baseline)
    except DeviceError as exc:
        if args.json:  # the report says what failed
            details = getattr(exc, "details", {})
            write_json({"status": "failed", "artifact": str(args.artifact),
                        "device": details.get("device", address.to_dict()),
                        "incidents": details.get("incidents", []),
                        "failure": {"error": str(exc), "type": type(exc).__name__}}, args.json)
        raise
    print(format_table(report))
    if args.json:
        print(f"\nreport: {write_json(report, args.json)}")
    return 0


def _is_firmware(artifact: str) -> bool:
    from edge_mnv2.artifact import load_artifact

    try:
        return load_artifact(artifact).is_micro
    except EdgeMnv2Error:
        return False   # bench_artifact reports the problem


def _cmd_flash(args: argparse.Namespace) -> int:
    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.micro.flash import flash
    from edge_mnv2.targets import load_target

    artifact = load_artifact(args.artifact)
    artifact.verify()
    if not artifact.is_micro:
        raise EdgeMnv2Error(f"artifact {args.artifact!r} is not firmware (built for {artifact.target_name}); "
                            "compile it for a microcontroller target first")
    target = load_target(args.target or artifact.target_name)
    if target.name != artifact.target_name:
        raise EdgeMnv2Error(f"artifact {args.artifact!r} was built for {artifact.target_name}, not {target.name}")
    from edge_mnv2.micro.qemu import EmulatedBoard

    board = flash(artifact.firmware_path, target, args.port)
    if not isinstance(board, EmulatedBoard):
        print(f"flashed {target.name}; its serial port is {board.url}\n"
              f"  edge-mnv2 bench {args.artifact} --target {target.name} --port {board.url}")
        return 0
    import time

    try:
        print(f"{target.name} is running {artifact.firmware_path} under qemu; its UART is {board.url}\n"
              f"  edge-mnv2 bench {args.artifact} --target {target.name} --port {board.url}\n"
              "Ctrl-C stops the board.", flush=True)
        while board.alive():
            time.sleep(0.5)
        print("edge-mnv2: the emulated board stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()


def _demo_one(model: str, out: Path, args: argparse.Namespace) -> dict:
    from edge_mnv2.bench import bench_artifact
    from edge_mnv2.compile import compile_model
    from edge_mnv2.export import export_onnx
    from edge_mnv2.report import format_table, write_json

    onnx_path = out / f"{model}.onnx"
    with progress.stage(f"exporting {model} to {onnx_path}"):
        export_onnx(model, onnx_path)
    artifact = compile_model(onnx_path, "host", out / "artifact")
    report = bench_artifact(artifact.directory, None, _bench_settings(args))
    report_path = write_json(report, out / "report.json")
    print(format_table(report))
    print(f"\nwrote {onnx_path}, {artifact.directory}/, {report_path}\n", flush=True)
    return report


def _cmd_demo(args: argparse.Namespace) -> int:
    from edge_mnv2.models import get_spec

    get_spec(args.model)
    trained = None if args.trained == "none" else args.trained
    if trained:
        get_spec(trained)
    out = Path(args.output)
    _demo_one(args.model, out, args)
    if trained:
        _demo_one(trained, out / "trained", args)
    return 0


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, help="evaluation images (default: 500 labelled, 32 synthetic)")
    p.add_argument("--data", help="evaluation data: 'shapes', an ImageFolder path with val/, or 'synthetic' "
                                  "(default: the model's own data set, else synthetic)")
    p.add_argument("--repeat", type=int, default=50, help="timed runs per runtime")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before timing")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds the timed runs are split into")
    p.add_argument("--no-peers", action="store_true",
                   help="do not time ONNX Runtime and PyTorch (nor count the rivals on an emulated board)")
    p.add_argument("--no-instructions", action="store_true",
                   help="on an emulated Linux board, skip counting instructions per inference")
    p.add_argument("--count-runs", type=int, default=3,
                   help="inferences counted per runtime on an emulated Linux board (median reported)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds allowed for one remote run; connect/upload limits scale from it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-mnv2", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edge-mnv2 {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the registered models with parameters and multiply-adds")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("export", help="export a model to ONNX, checked against ONNX Runtime")
    p.add_argument("model", help="registered model name (see `edge-mnv2 models`)")
    p.add_argument("--checkpoint", help="PyTorch state dict to load (default: seeded random weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("-o", "--output", type=Path, help="ONNX file to write (default: MODEL.onnx)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("compile", help="compile a model or ONNX file with TVM for a target")
    p.add_argument("model", metavar="MODEL_OR_ONNX", help="registered model name or .onnx file")
    p.add_argument("--target", default="host", help="target name from targets/ or a .toml path")
    p.add_argument("--checkpoint", help="PyTorch state dict (when MODEL is a name)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint")
    p.add_argument("-o", "--output", type=Path, help="artifact folder (default: build/MODEL-TARGET)")
    p.add_argument("--no-tuning-log", action="store_true",
                   help="ignore tuning_logs/TARGET/MODEL and build with TVM's default schedules")
    p.add_argument("--quantize", choices=["int8"], help="post-training quantization: kernels compute in int8")
    p.add_argument("--calibration", metavar="DATA",
                   help="calibration images for --quantize: 'shapes', a folder with train/, or 'synthetic' "
                        "(default: the model's training data set, else synthetic)")
    p.add_argument("--exec-mode", metavar="MODE",
                   help=f"how the Relax VM runs the model's steps: {' or '.join(EXEC_MODES)} (interpreted, or "
                        "compiled to machine code; default: the target file's [export] exec_mode)")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("tune", help="auto-tune a model with MetaSchedule into tuning_logs/TARGET/MODEL")
    p.add_argument("model", metavar="MODEL_OR_ONNX", help="registered model name or .onnx file")
    p.add_argument("--target", default="host", help="target name from targets/ or a .toml path")
    p.add_argument("--trials", type=int, default=512,
                   help="measured candidates the log should hold in all (a re-run adds only the rest)")
    p.add_argument("--tracker", metavar="HOST:PORT", help="measure on a device from this tracker (RPC runner)")
    p.add_argument("--key", help="device key at the tracker (e.g. rpi4b)")
    p.add_argument("--checkpoint", help="PyTorch state dict (when MODEL is a name)")
    p.add_argument("--quantize", choices=["int8"], help="tune the int8 build's kernels (log MODEL.int8)")
    p.add_argument("--calibration", metavar="DATA", help="calibration images for --quantize (as compile)")
    p.add_argument("--weight-prepack", action=argparse.BooleanOptionalAction, default=None,
                   help="let schedules choose the weights' layout, repacked at compile time (a new log's "
                        "default comes from the target's [tuning] table; a log keeps its setting)")
    p.add_argument("--cache-flush", action=argparse.BooleanOptionalAction, default=None,
                   help="time each candidate with the CPU's caches flushed of its weights and output, as a "
                        "kernel runs inside a whole model (a new log's default comes from the target's "
                        "[tuning] table; a log keeps its setting)")
    p.add_argument("--layout", choices=list(LAYOUTS), default=None,
                   help="data layout the model computes in (a new log's default comes from the target's "
                        "[tuning] table, else NCHW as imported; a log keeps its layout and compile follows it)")
    p.add_argument("--tasks", metavar="N", type=int,
                   help="spend the trials on the N tasks with the largest share of the estimated latency, "
                        "each searched on its own (a top-up for a log the whole-model search has stalled on); "
                        "trials a task cannot spend pass to the next-largest task")
    p.add_argument("--seed-from", metavar="LOG", type=Path,
                   help="another tuning log (e.g. tuned without prepacked weights, or on another CPU): its best "
                        "schedules for tasks this log lacks are measured here first and count as trials")
    p.add_argument("--seed-top", metavar="K", type=int, default=4,
                   help="schedules per task taken from --seed-from (default 4)")
    p.add_argument("--no-schedule-library", dest="schedule_library", action="store_false",
                   help="do not measure edge-mnv2's hand-written schedules (e.g. channels-last depthwise) and the "
                        "default rules' schedule of each task (what a zero-trial build runs) as candidates; by "
                        "default each is measured once into a log, so the search starts from them, and counts "
                        "as trials")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("prune-log", help="keep only a tuning log's best records of each task (a smaller file "
                                         "to commit; compile applies the same schedules)")
    p.add_argument("log", metavar="LOG", type=Path, help="a tuning log folder, e.g. tuning_logs/host/MODEL")
    p.add_argument("--keep", metavar="K", type=int, default=DEFAULT_KEEP,
                   help=f"records kept per task, the fastest (default {DEFAULT_KEEP})")
    p.set_defaults(func=_cmd_prune_log)

    p = sub.add_parser("train", help="train a model with the paper's recipe (RMSProp, lr 0.045 x 0.98/epoch)")
    p.add_argument("model", help="registered model name (see `edge-mnv2 models`)")
    p.add_argument("--data", default="shapes",
                   help="'shapes' (the procedural set) or a folder with train/ and val/ ImageNet-style subfolders")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--lr", type=float, default=0.045, help="initial learning rate")
    p.add_argument("--lr-decay", type=float, default=0.98, help="learning-rate factor per epoch")
    p.add_argument("--warmup-epochs", type=float, default=0.0, help="linear learning-rate warm-up")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--train-size", type=int, help="shapes: images in the train split (default 20000)")
    p.add_argument("--val-size", type=int, help="validation images (default: shapes 2000, folders all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its saved state")
    p.add_argument("--init-backbone", metavar="MODEL_OR_CKPT",
                   help="start the MobileNetV2 backbone from a trained classifier (detection, segmentation)")
    p.add_argument("-o", "--output", type=Path, help="weights file (default checkpoints/MODEL.DATA.pt)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("bench", help="measure an artifact on a device through TVM RPC")
    p.add_argument("artifact", help="artifact folder written by compile")
    where = p.add_argument_group("device (default: a local RPC server started for the run)")
    where.add_argument("--rpc", metavar="HOST:PORT", help="a TVM RPC server to connect to directly")
    where.add_argument("--tracker", metavar="HOST:PORT", help="a TVM RPC tracker to request a device from")
    where.add_argument("--key", help="device key at the tracker (e.g. rpi4b)")
    where.add_argument("--target", help="a microcontroller board: measure its firmware over the serial link "
                       "(emulated boards start qemu unless --port is given)")
    where.add_argument("--port", help="the board's serial port (/dev/ttyACM0, socket://HOST:PORT)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    p.add_argument("--baseline", metavar="ARTIFACT", help="another build of the model for the same target "
                   "(e.g. fp32 beside an int8 build): run and timed beside it on the same device")
    _add_bench_options(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("flash", help="flash firmware to a board (emulated boards: run it under qemu until Ctrl-C)")
    p.add_argument("artifact", help="artifact folder written by compile for a microcontroller target")
    p.add_argument("--target", help="the board (default: the one the artifact was built for)")
    p.add_argument("--port", help="the board's serial port, printed for bench (default: the target's)")
    p.set_defaults(func=_cmd_flash)

    p = sub.add_parser("tracker", help="run TVM's RPC tracker (devices register with it under a key)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for other machines)")
    p.add_argument("--port", type=int, default=9190)
    p.set_defaults(func=_cmd_tracker)

    p = sub.add_parser("device", help="emulated devices: prepare one, or run TVM's RPC server on one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("emulate", help="run TVM's RPC server on an emulated board until Ctrl-C")
    a.add_argument("target", help="a target with an [emulate] recipe, e.g. rpi4b")
    a.add_argument("--tracker", metavar="HOST:PORT", help="register with this tracker under the target's key")
    a.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    a = actions.add_parser("prepare", help="build (once, cached) the emulator image for a target")
    a.add_argument("target")
    p.set_defaults(func=_cmd_device)

    p = sub.add_parser("demo", help=f"export, compile and bench {DEMO_MODEL} on the local RPC device")
    p.add_argument("-o", "--output", default="demo-out", help="folder for the ONNX, artifact and report")
    p.add_argument("--model", default=DEMO_MODEL, help="model to run the demo with (written to DIR)")
    p.add_argument("--trained", default=DEMO_TRAINED,
                   help="a trained model measured on its labelled validation set too (written to DIR/trained; "
                        "'none' to skip)")
    _add_bench_options(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress.set_quiet(args.quiet)
    try:
        runtime_threads.configure()   # before any kernel runs here or in a process started from here
        with signals.terminating_interrupts():   # SIGTERM/SIGHUP stop what a command started, as Ctrl-C does
            return args.func(args)
    except EdgeMnv2Error as exc:
        print(f"edge-mnv2: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-mnv2: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
