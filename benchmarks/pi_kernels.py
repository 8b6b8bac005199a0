"""Benchmark (run by hand): instructions per kernel of one TVM build on an emulated Raspberry Pi.

    .venv/bin/python benchmarks/pi_kernels.py mobilenet_v2_1.0_224 [--target rpi4b] [--top 20]
        [--build-dir build/pi-kernels] [-o table.md]

Compiles the model for the board without a tuning log and with the bytecode VM (whose kernel calls the
count can see; the kernels are those of the default build), counts one inference on one thread on the
board's emulated CPU with a region per kernel call, and prints the kernels by instructions, with the
rule and tile that scheduled each and its instruction mix. Counts are not time: see
docs/instruction-counts.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from table_output import emit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--target", default="rpi4b")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--build-dir", type=Path, default=Path("build/pi-kernels"))
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()

    import numpy as np

    from edge_mnv2.artifact import load_artifact
    from edge_mnv2.compile import compile_model
    from edge_mnv2.remote.emulator import EmulatorRecipe, prepare
    from edge_mnv2.remote.instructions.counting import CountSettings, count_runtime
    from edge_mnv2.targets import load_target

    out = args.build_dir / f"{args.model}-{args.target}"
    artifact = (
        load_artifact(out)
        if (out / "artifact.json").is_file()
        else compile_model(args.model, args.target, out, use_tuning=False, exec_mode="bytecode")
    )
    target = load_target(args.target)
    image = prepare(EmulatorRecipe.from_target(target))
    x = np.random.default_rng(0).standard_normal(artifact.input_shape).astype(np.float32)
    counted = count_runtime(image, "tvm", artifact.library_path, x, CountSettings(runs=1), per_kernel=True)
    kernels = artifact.metadata["schedules"]["kernels"]
    calls: dict[str, list] = defaultdict(list)
    for name, region in counted.kernels:
        calls[name].append(region)
    rows = sorted(calls.items(), key=lambda kv: -sum(r.total for r in kv[1]))
    total = counted.median.total
    lines = [
        f"{args.model} on the emulated {image.recipe.cpu} ({args.target}), 0 trials: {total / 1e6:.2f} M "
        f"instructions per inference, {len(counted.kernels)} kernel calls (counts, not time)",
        "",
        "| kernel | calls | M instructions | share | rule (tile) | vector FMA | vector loads/stores "
        "| integer + branch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, regions in rows[: args.top]:
        entry = kernels.get(name.removesuffix("_prepacked"), kernels.get(name, {}))
        params = entry.get("params", {})
        tile = ", ".join(f"{k}={v}" for k, v in params.items() if k in ("pixel_tile", "channel_tile", "row_tile"))
        mix = {
            k: sum(r.mix.get(k, 0) for r in regions) for k in ("vector_fma", "simd_fp_load_store", "integer", "branch")
        }
        count = sum(r.total for r in regions)
        lines.append(
            f"| {name} | {len(regions)} | {count / 1e6:.2f} | {count / total:.1%} | "
            f"{entry.get('rule', entry.get('source', '?'))} ({tile}) | {mix['vector_fma'] / 1e6:.2f} | "
            f"{mix['simd_fp_load_store'] / 1e6:.2f} | {(mix['integer'] + mix['branch']) / 1e6:.2f} |"
        )
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
