"""Reports: the JSON file and the table printed for people."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(report: dict, path: str | Path) -> Path:
    """Write the report atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def format_table(report: dict) -> str:
    """A readable summary: latency of TVM on the device beside the host peers, then accuracy."""
    lat = report["latency_ms"]
    where = "emulated" if report["device"].get("emulated") else "on device"
    rows = [("TVM (" + report["target"]["name"] + f", {where})", lat)]
    if "baseline" in report:
        b = report["baseline"]
        rows.append((f"baseline: {b['quantization'] or 'fp32'} build ({where})", b["latency_ms"]))
    rows += [
        (f"{name} (host)", peer["latency_ms"]) for name, peer in report.get("peers", {}).items() if "latency_ms" in peer
    ]
    ort = report.get("peers", {}).get("onnxruntime")
    head = f"{'runtime':<36} {'median':>9} {'p90':>9} {'min':>9} {'std':>8} {'vs ORT':>7}"
    threads = report["device"].get("tvm_threads")
    lines = [
        f"{report.get('model') or report['artifact']}  on  {report['device']['kind']} device "
        f"({_where(report['device'])}{f', TVM on {threads} threads' if threads else ''})"
    ]
    if report["device"].get("emulated"):
        lines.append(
            f"NOTE: this device is emulated ({report['device'].get('emulator', 'qemu')}): timings under "
            "emulation are NOT device timings; outputs and accuracy are real."
        )
    for incident in report.get("incidents", []):
        lines.append(
            f"incident: failed to {incident['step']} ({incident['error']}); "
            f"{incident.get('action', '')}, {incident.get('outcome', 'not recovered')}"
        )
    lines += ["", "latency (ms, batch 1)", head, "-" * len(head)]
    for name, s in rows:
        ratio = f"{s['median'] / ort['latency_ms']['median']:.2f}x" if ort else "-"
        lines.append(f"{name:<36} {s['median']:>9.3f} {s['p90']:>9.3f} {s['min']:>9.3f} {s['std']:>8.3f} {ratio:>7}")
    if "tvm_over_baseline" in report.get("ratios", {}):
        lines.append(f"{'TVM / baseline (median)':<36} {report['ratios']['tvm_over_baseline']:>9.3f}")
    if "cycles" in report:
        c = report["cycles"]
        lines.append(f"{'ticks (median)':<30} {c['median']:>12,.0f} at {c['clock_hz'] / 1e6:g} MHz")
    if "instructions" in report and "median" in report["instructions"]:  # a microcontroller's icount
        per_mac = report["instructions"].get("per_mac")
        lines.append(
            f"{'instructions (median)':<30} {report['instructions']['median']:>12,.0f}  "
            + (f"{per_mac:.2f} per MAC  " if per_mac else "")
            + "(qemu -icount: deterministic)"
        )
    if "instructions" in report and "mix" in report["instructions"]:
        lines += ["", *instruction_lines(report)]
    if report.get("per_layer"):
        lines += ["", *per_layer_lines(report["per_layer"])]
    if "memory" in report:
        m = report["memory"]
        lines += [
            "",
            "memory on the board (bytes)",
            f"  flash {m['flash_total']:>10,} of {m['flash_available']:,}: code {m['flash_code']:,}, "
            f"weights {m['flash_weights']:,}",
            f"  RAM   {m['ram_total']:>10,} of {m['ram_available']:,}: arena {m['ram_arena']:,}, "
            f"I/O {m['ram_io']:,}, stack {m['ram_stack']:,}, other {m['ram_other']:,}",
        ]
    acc = report["accuracy"]
    data = acc.get("data", {}).get("name", "synthetic")
    if "task_metrics" in acc:
        t = acc["task_metrics"]
        names = {"map50": "mAP@0.5 %", "map50_95": "mAP@0.5:0.95 %", "miou": "mIoU %"}
        lines += [
            "",
            f"{t['task']} on {data} validation ({acc['num_images']} images)",
            f"  {'':<22} {'device':>8} {'desktop':>8}",
        ]
        for key, label in names.items():
            if f"device_{key}" in t:
                lines.append(f"  {label:<22} {t[f'device_{key}']:>8.2f} {t[f'reference_{key}']:>8.2f}")
    if "device_top1" in acc:
        lines += [
            "",
            f"accuracy on {data} validation ({acc['num_images']} labelled images)",
            f"  {'':<22} {'device':>8} {'desktop':>8}",
            f"  {'top-1 %':<22} {acc['device_top1']:>8.2f} {acc['reference_top1']:>8.2f}",
            f"  {'top-5 %':<22} {acc['device_top5']:>8.2f} {acc['reference_top5']:>8.2f}",
        ]
    lines += [
        "",
        f"device vs desktop {acc['reference']} reference ({acc['num_images']} {data} images)",
        f"  top-1 agreement        {acc['top1_agreement']:.1f} %",
        f"  top-5 overlap          {acc['top5_overlap']:.1f} %",
        f"  max abs error          {acc['max_abs_error']:.2e}",
        f"  mean cosine similarity {acc['mean_cosine_similarity']:.6f}",
    ]
    if "int8_reference" in acc:
        q = acc["int8_reference"]
        lines += [
            "",
            "device vs the int8 desktop reference (the same integer arithmetic in numpy)",
            f"  top-1 agreement        {q['top1_agreement']:.1f} %",
            f"  max abs error          {q['max_abs_error']:.2e}",
        ]
        if "top1" in q:
            lines.append(f"  int8 reference top-1   {q['top1']:.2f} %  (fp32 desktop {acc['reference_top1']:.2f} %)")
    if "baseline" in report:
        b = report["baseline"]["accuracy"]
        lines += ["", f"baseline build ({report['baseline']['artifact']}) on the same device"]
        if "device_top1" in b:
            lines.append(f"  top-1 %                {b['device_top1']:.2f}  (this build {acc['device_top1']:.2f})")
        for key, value in b.get("task_metrics", {}).items():
            if key.startswith("device_"):
                lines.append(f"  {key[7:]:<22} {value:.2f}  (this build {acc['task_metrics'][key]:.2f})")
        lines.append(
            f"  vs desktop reference   top-1 agreement {b['top1_agreement']:.1f} %, "
            f"max abs error {b['max_abs_error']:.2e}"
        )
    if "max_abs_error_vs_host" in acc:
        lines += [
            "",
            "device vs the same generated C on the host",
            f"  top-1 agreement        {acc['top1_agreement_vs_host']:.1f} %",
            f"  max abs error          {acc['max_abs_error_vs_host']:.2e}",
        ]
    return "\n".join(lines)


def per_layer_lines(rows: list[dict]) -> list[str]:
    """The per-layer table: a board's profile (instructions when emulated, else ms), or a host build's
    kernels with ONNX Runtime's time for the same layer."""
    counted = "instructions" in rows[0]
    ort = all("onnxruntime_ms" in r for r in rows)
    total = sum(r["instructions"] if counted else r["ms"] for r in rows) or 1
    head = f"{'step':<46} {'instructions' if counted else 'ms':>12} {'share':>6} " + (
        f"{'ORT ms':>8} {'TVM/ORT':>8}" if ort else f"{'per MAC':>8}"
    )
    lines = ["per layer" + ("" if ort else " (the last image)"), head, "-" * len(head)]
    for r in rows:
        value = r["instructions"] if counted else r["ms"]
        if ort:
            tail = f"{r['onnxruntime_ms']:>8.3f} {r['ms'] / r['onnxruntime_ms']:>8.2f}"
        else:
            tail = f"{r['instructions_per_mac']:>8.2f}" if "instructions_per_mac" in r else f"{'-':>8}"
        lines.append(f"{r['name'][:46]:<46} {value:>12,.{0 if counted else 3}f} {value / total * 100:>5.1f}% {tail}")
    return lines


def instruction_lines(report: dict) -> list[str]:
    """The emulated Linux board's instruction counts: TVM beside the rivals counted on the same CPU."""
    ins = report["instructions"]
    rows = [(f"TVM ({report['target']['name']} build)", ins)]
    skipped = []
    for name, peer in report.get("peers", {}).items():
        if peer.get("where") == "emulated":
            if "instructions" in peer:
                rows.append((f"{name} {peer.get('version', '')}".strip(), peer["instructions"]))
            else:
                skipped.append(f"{name}: {peer.get('skipped', 'not counted')}")
    head = f"{'runtime':<36} {'per inference':>14} {'per MAC':>8} {'vector FMA share':>17} {'TVM / it':>9}"
    lines = [
        f"instructions per inference on the emulated {ins.get('cpu', 'CPU')}, 1 thread, median of "
        f"{ins['runs']} (instruction counts on an emulated CPU, NOT time)",
        head,
        "-" * len(head),
    ]
    for name, counts in rows:
        per_mac = f"{counts['per_mac']:.2f}" if "per_mac" in counts else "-"
        share = f"{100 * counts['vector_fma_share']:.1f} %" if "vector_fma_share" in counts else "-"
        ratio = f"{ins['per_inference'] / counts['per_inference']:.2f}x"
        lines.append(f"{name:<36} {counts['per_inference']:>14,} {per_mac:>8} {share:>17} {ratio:>9}")
    mix = ins["mix"]
    total = sum(mix.values()) or 1
    lines.append("TVM's mix: " + ", ".join(f"{k} {100 * v / total:.1f} %" for k, v in mix.items() if v))
    lines += [f"not counted: {s}" for s in skipped]
    return lines


def _where(device: dict) -> str:
    if device["kind"] == "tracker":
        return f"key {device['key']} via {device['host']}:{device['port']}"
    if device["kind"] == "local":
        return "embedded server on 127.0.0.1"
    if device["kind"] == "emulated":
        return f"{device.get('key') or 'board'}, emulated CPU {device.get('cpu', '?')} on 127.0.0.1"
    return f"{device['host']}:{device['port']}"


def failure_report(artifact: str, error: Exception, device: dict) -> dict:
    """The JSON report of a failed device run: what failed, on which device, and what happened before it."""
    details = getattr(error, "details", {})  # a DeviceError carries the device it reached and the incidents
    return {
        "status": "failed",
        "artifact": artifact,
        "device": details.get("device", device),
        "incidents": details.get("incidents", []),
        "failure": {"error": str(error), "type": type(error).__name__},
    }
