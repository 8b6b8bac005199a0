"""The ``edge-mnv2`` command line: every command, option and its help text."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_mnv2 import __version__
from edge_mnv2.cli import commands
from edge_mnv2.compile.relax_layout import LAYOUTS
from edge_mnv2.demo import DEMO_MODEL, DEMO_TRAINED
from edge_mnv2.models.mobilenet_v2 import RESOLUTIONS, WIDTHS
from edge_mnv2.targets import EXEC_MODES
from edge_mnv2.tuning.prune import DEFAULT_KEEP
from edge_mnv2.tuning.search import POPULATION

DESCRIPTION = (
    "Train, export, compile, tune and measure MobileNetV2-family models on edge hardware "
    "(Raspberry Pi, Jetson, microcontrollers, this machine) through Apache TVM. "
    "Run 'edge-mnv2 COMMAND --help' for a command's options."
)


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    """The measuring options bench and demo share."""
    p.add_argument("--images", type=int, help="evaluation images (default: 500 labelled, 32 synthetic)")
    p.add_argument(
        "--data",
        help="evaluation data: 'shapes', an ImageFolder path with val/, or 'synthetic' "
        "(default: the model's own data set, else synthetic)",
    )
    p.add_argument("--repeat", type=int, default=50, help="timed runs per runtime")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before timing")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds the timed runs are split into")
    p.add_argument(
        "--no-peers",
        action="store_true",
        help="do not time ONNX Runtime and PyTorch (nor count the rivals on an emulated board)",
    )
    p.add_argument(
        "--no-instructions",
        action="store_true",
        help="on an emulated Linux board, skip counting instructions per inference",
    )
    p.add_argument(
        "--count-runs",
        type=int,
        default=3,
        help="inferences counted per runtime on an emulated Linux board (median reported)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds allowed for one remote run; connect/upload limits scale from it",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``edge-mnv2`` argument parser; each command's ``func`` is its handler in :mod:`edge_mnv2.cli.commands`."""
    parser = argparse.ArgumentParser(prog="edge-mnv2", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"edge-mnv2 {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the registered models with parameters and multiply-adds")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=commands.cmd_models)

    p = sub.add_parser("export", help="export a model to ONNX, checked against ONNX Runtime")
    p.add_argument("model", help="registered model name (see `edge-mnv2 models`)")
    p.add_argument("--checkpoint", help="PyTorch state dict to load (default: seeded random weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("-o", "--output", type=Path, help="ONNX file to write (default: MODEL.onnx)")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("compile", help="compile a model or ONNX file with TVM for a target")
    p.add_argument("model", metavar="MODEL_OR_ONNX", help="registered model name or .onnx file")
    p.add_argument("--target", default="host", help="target name from targets/ or a .toml path")
    p.add_argument("--checkpoint", help="PyTorch state dict (when MODEL is a name)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights when no checkpoint")
    p.add_argument("-o", "--output", type=Path, help="artifact folder (default: build/MODEL-TARGET)")
    p.add_argument(
        "--no-tuning-log",
        action="store_true",
        help="apply no tuning log: every kernel gets its default schedule rule (docs/default-schedules.md)",
    )
    p.add_argument("--quantize", choices=["int8"], help="post-training quantization: kernels compute in int8")
    p.add_argument(
        "--calibration",
        metavar="DATA",
        help="calibration images for --quantize: 'shapes', a folder with train/, or 'synthetic' "
        "(default: the model's training data set, else synthetic)",
    )
    p.add_argument(
        "--exec-mode",
        metavar="MODE",
        help=f"how the Relax VM runs the model's steps: {' or '.join(EXEC_MODES)} (interpreted, or "
        "compiled to machine code; default: the target file's [export] exec_mode)",
    )
    p.set_defaults(func=commands.cmd_compile)

    p = sub.add_parser("tune", help="auto-tune a model with MetaSchedule into tuning_logs/TARGET/MODEL")
    p.add_argument("model", metavar="MODEL_OR_ONNX", help="registered model name or .onnx file")
    p.add_argument("--target", default="host", help="target name from targets/ or a .toml path")
    p.add_argument(
        "--trials",
        type=int,
        default=512,
        help="measured candidates the log should hold in all (a re-run adds only the rest)",
    )
    p.add_argument("--tracker", metavar="HOST:PORT", help="measure on a device from this tracker (RPC runner)")
    p.add_argument("--key", help="device key at the tracker (e.g. rpi4b)")
    p.add_argument("--checkpoint", help="PyTorch state dict (when MODEL is a name)")
    p.add_argument("--quantize", choices=["int8"], help="tune the int8 build's kernels (log MODEL.int8)")
    p.add_argument("--calibration", metavar="DATA", help="calibration images for --quantize (as compile)")
    p.add_argument(
        "--weight-prepack",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let schedules choose the weights' layout, repacked at compile time (a new log's "
        "default comes from the target's [tuning] table; a log keeps its setting)",
    )
    p.add_argument(
        "--cache-flush",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time each candidate with the CPU's caches flushed of its weights and output, as a "
        "kernel runs inside a whole model (a new log's default comes from the target's "
        "[tuning] table; a log keeps its setting)",
    )
    p.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        default=None,
        help="data layout the model computes in (a new log's default comes from the target's "
        "[tuning] table, else NCHW as imported; a log keeps its layout and compile follows it)",
    )
    p.add_argument(
        "--tasks",
        metavar="N",
        type=int,
        help="spend the trials on the N tasks with the largest share of the estimated latency, "
        "each searched on its own (a top-up for a log the whole-model search has stalled on); "
        "trials a task cannot spend pass to the next-largest task",
    )
    p.add_argument(
        "--seed-from",
        metavar="LOG",
        type=Path,
        help="another tuning log (e.g. tuned without prepacked weights, or on another CPU): its best "
        "schedules for tasks this log lacks are measured here first and count as trials",
    )
    p.add_argument(
        "--seed-top", metavar="K", type=int, default=4, help="schedules per task taken from --seed-from (default 4)"
    )
    p.add_argument(
        "--no-schedule-library",
        dest="schedule_library",
        action="store_false",
        help="do not measure edge-mnv2's hand-written schedules (e.g. channels-last depthwise) and the "
        "default rules' schedule of each task (what a zero-trial build runs) as candidates; by "
        "default each is measured once into a log, so the search starts from them, and counts "
        "as trials",
    )
    p.add_argument(
        "--population",
        metavar="N",
        type=int,
        default=POPULATION,
        help=f"schedules per generation of the evolutionary search (default {POPULATION}, "
        "MetaSchedule's): smaller makes each round faster and the search narrower",
    )
    p.set_defaults(func=commands.cmd_tune)

    p = sub.add_parser(
        "prune-log",
        help="keep only a tuning log's best records of each task (a smaller file "
        "to commit; compile applies the same schedules)",
    )
    p.add_argument("log", metavar="LOG", type=Path, help="a tuning log folder, e.g. tuning_logs/host/MODEL")
    p.add_argument(
        "--keep",
        metavar="K",
        type=int,
        default=DEFAULT_KEEP,
        help=f"records kept per task, the fastest (default {DEFAULT_KEEP})",
    )
    p.set_defaults(func=commands.cmd_prune_log)

    p = sub.add_parser("train", help="train a model with the paper's recipe (RMSProp, lr 0.045 x 0.98/epoch)")
    p.add_argument("model", help="registered model name (see `edge-mnv2 models`)")
    p.add_argument(
        "--data",
        default="shapes",
        help="'shapes' (the procedural set) or a folder with train/ and val/ ImageNet-style subfolders",
    )
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
    p.add_argument(
        "--init-backbone",
        metavar="MODEL_OR_CKPT",
        help="start the MobileNetV2 backbone from a trained classifier (detection, segmentation)",
    )
    p.add_argument("-o", "--output", type=Path, help="weights file (default checkpoints/MODEL.DATA.pt)")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("bench", help="measure an artifact on a device through TVM RPC")
    p.add_argument("artifact", help="artifact folder written by compile")
    where = p.add_argument_group("device (default: a local RPC server started for the run)")
    where.add_argument("--rpc", metavar="HOST:PORT", help="a TVM RPC server to connect to directly")
    where.add_argument("--tracker", metavar="HOST:PORT", help="a TVM RPC tracker to request a device from")
    where.add_argument("--key", help="device key at the tracker (e.g. rpi4b)")
    where.add_argument(
        "--target",
        help="a microcontroller board: measure its firmware over the serial link "
        "(emulated boards start qemu unless --port is given)",
    )
    where.add_argument("--port", help="the board's serial port (/dev/ttyACM0, socket://HOST:PORT)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    p.add_argument(
        "--baseline",
        metavar="ARTIFACT",
        help="another build of the model for the same target "
        "(e.g. fp32 beside an int8 build): run and timed beside it on the same device",
    )
    p.add_argument(
        "--per-layer",
        nargs="?",
        const=Path("per_layer.png"),
        type=Path,
        metavar="PNG",
        help="also time each layer and draw a bar chart (default per_layer.png): a board's per-step "
        "profile, or a host build's kernels (--exec-mode bytecode) beside ONNX Runtime's",
    )
    _add_bench_options(p)
    p.set_defaults(func=commands.cmd_bench)

    p = sub.add_parser(
        "sweep",
        help="compile and bench a width x resolution grid on one device: CSV, JSON and a "
        "plot of measured cost against published accuracy with its Pareto front",
    )
    p.add_argument(
        "--target",
        required=True,
        help="the target every variant is compiled for (host, rpi4b, mps3-an547, stm32f746g-disco, ...)",
    )
    p.add_argument(
        "--widths",
        default=",".join(f"{w:g}" for w in WIDTHS),
        help="comma-separated width multipliers (default: the paper's six)",
    )
    p.add_argument(
        "--resolutions",
        default=",".join(map(str, RESOLUTIONS)),
        help="comma-separated input resolutions (default: the paper's five)",
    )
    where = p.add_argument_group(
        "device (default: a local RPC server, the emulator of an emulated target, or an emulated board)"
    )
    where.add_argument("--rpc", metavar="HOST:PORT", help="a TVM RPC server to connect to directly")
    where.add_argument("--tracker", metavar="HOST:PORT", help="a TVM RPC tracker to request a device from")
    where.add_argument("--key", help="device key at the tracker (e.g. rpi4b)")
    where.add_argument("--port", help="a microcontroller board's serial port (/dev/ttyACM0, socket://HOST:PORT)")
    p.add_argument("--quantize", choices=["int8"], help="post-training int8 for every variant")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="folder for artifacts and results; an interrupted sweep continues from it (default: sweep-TARGET)",
    )
    p.add_argument("--images", type=int, default=4, help="images run per variant (accuracy is the published one)")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per variant")
    p.set_defaults(func=commands.cmd_sweep)

    p = sub.add_parser("flash", help="flash firmware to a board (emulated boards: run it under qemu until Ctrl-C)")
    p.add_argument("artifact", help="artifact folder written by compile for a microcontroller target")
    p.add_argument("--target", help="the board (default: the one the artifact was built for)")
    p.add_argument("--port", help="the board's serial port, printed for bench (default: the target's)")
    p.set_defaults(func=commands.cmd_flash)

    p = sub.add_parser("tracker", help="run TVM's RPC tracker (devices register with it under a key)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for other machines)")
    p.add_argument("--port", type=int, default=9190)
    p.set_defaults(func=commands.cmd_tracker)

    p = sub.add_parser("device", help="emulated devices: prepare one, or run TVM's RPC server on one")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("emulate", help="run TVM's RPC server on an emulated board until Ctrl-C")
    a.add_argument("target", help="a target with an [emulate] recipe, e.g. rpi4b")
    a.add_argument("--tracker", metavar="HOST:PORT", help="register with this tracker under the target's key")
    a.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    a = actions.add_parser("prepare", help="build (once, cached) the emulator image for a target")
    a.add_argument("target")
    p.set_defaults(func=commands.cmd_device)

    p = sub.add_parser("demo", help=f"export, compile and bench {DEMO_MODEL} on the local RPC device")
    p.add_argument("-o", "--output", default="demo-out", help="folder for the ONNX, artifact and report")
    p.add_argument("--model", default=DEMO_MODEL, help="model to run the demo with (written to DIR)")
    p.add_argument(
        "--trained",
        default=DEMO_TRAINED,
        help="a trained model measured on its labelled validation set too (written to DIR/trained; 'none' to skip)",
    )
    _add_bench_options(p)
    p.set_defaults(func=commands.cmd_demo)
    return parser
