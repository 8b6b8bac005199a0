"""The ``edge-mnv2`` command: outputs, exit codes, and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from edge_mnv2.cli import main


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "edge_mnv2", "-q", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-mnv2: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_models_lists_the_registry_with_published_figures(capsys):
    assert main(["-q", "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert len([r for r in rows.values() if r["weights"] is None and r["family"] == "mobilenet_v2"]) == 30
    shipped = rows["mobilenet_v2_0.35_96.shapes"]
    assert shipped["classes"] == 10 and shipped["weights"]["dataset"] == "shapes"
    assert shipped["weights"]["val_top1"] >= 90 and "edge-mnv2 train" in shipped["weights"]["command"]
    assert rows["mobilenet_v2_1.0_224"]["params"] == 3_504_872
    assert rows["mobilenet_v2_1.0_224"]["madds"] == pytest.approx(300e6, rel=0.01)
    assert main(["-q", "models"]) == 0
    table = capsys.readouterr().out
    assert "mobilenet_v2_1.4_224" in table and "3.50" in table and "300.8" in table
    assert "trained on shapes, val top-1" in table


@pytest.mark.parametrize(
    "args, needles",
    [
        (["export", "resnet50"], ["resnet50", "`edge-mnv2 models` lists the"]),
        (["export", "mobilenet_v2_2.0_224"], ["width", "2.0", "0.35"]),
        (["export", "mobilenet_v2_1.0_100"], ["resolution", "100", "224"]),
        (["compile", "mobilenet_v2_0.35_96", "--target", "rpi9"], ["rpi9", "host"]),
        (["compile", "missing.onnx"], ["missing.onnx", "does not exist"]),
        (["bench", "no-such-artifact"], ["no-such-artifact", "edge-mnv2 compile"]),
        (["bench", "x", "--rpc", "nonsense"], ["nonsense", "HOST:PORT"]),
        (["bench", "x", "--tracker", "127.0.0.1:9190"], ["--key"]),
        (["export", "mobilenet_v2_0.35_96", "--checkpoint", "nope.pt"], ["nope.pt"]),
        (["tune", "mobilenet_v2_0.35_96", "--seed-from", "nowhere"], ["nowhere", "is not a tuning log"]),
        (["tune", "mobilenet_v2_0.35_96", "--tasks", "0"], ["--tasks must be at least 1, got 0"]),
        (["tune", "mobilenet_v2_0.35_96", "--population", "4"], ["--population must be at least 16, got 4"]),
        (
            ["compile", "mobilenet_v2_0.35_96", "--exec-mode", "jit"],
            ["--exec-mode = 'jit' is not an exec mode", "'bytecode'"],
        ),
    ],
)
def test_user_mistakes_are_one_line(tmp_path, args, needles):
    assert_one_line_error(run_cli(*args, cwd=tmp_path), *needles)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written


def test_a_log_keeps_its_weights_layout(tmp_path):
    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning.logs import LOGS_ENV, write_meta

    host = load_target("host")
    log = tmp_path / "logs" / "host" / "mobilenet_v2_0.35_96"  # a log for this CPU, started prepacked
    log.mkdir(parents=True)
    write_meta(log, tvm_target=host.resolved_tvm(), weight_prepack=True)
    result = run_cli(
        "tune", "mobilenet_v2_0.35_96", "--no-weight-prepack", cwd=tmp_path, env={LOGS_ENV: str(tmp_path / "logs")}
    )
    assert_one_line_error(result, "--no-weight-prepack cannot continue it")
    assert [p.name for p in log.iterdir()] == ["tuning.json"]  # nothing half-written


def test_not_an_onnx_file(tmp_path):
    (tmp_path / "bad.onnx").write_text("hello")
    result = run_cli("compile", "bad.onnx", "-o", "out", cwd=tmp_path)
    assert_one_line_error(result, "bad.onnx", "not an ONNX model")
    assert not (tmp_path / "out").exists()


def test_export_command(tmp_path):
    result = run_cli("export", "mobilenet_v2_0.35_96", "-o", "m.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "max abs error" in result.stdout
    assert (tmp_path / "m.onnx").stat().st_size > 1_000_000


@pytest.mark.slow
def test_unanswering_rpc_address(small_artifact, tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts (in the kernel backlog) but never answers the handshake
    port = listener.getsockname()[1]
    try:
        result = run_cli(
            "bench",
            str(small_artifact.directory),
            "--rpc",
            f"127.0.0.1:{port}",
            "--timeout",
            "3",
            "--no-peers",
            "--json",
            str(tmp_path / "r.json"),
        )
    finally:
        listener.close()
    assert_one_line_error(result, f"127.0.0.1:{port}", "did not answer")
    failed = json.loads((tmp_path / "r.json").read_text())  # the report says what failed
    assert failed["status"] == "failed" and "did not answer" in failed["failure"]["error"]
    assert failed["device"]["port"] == port


@pytest.mark.slow
def test_demo_writes_onnx_artifact_and_report(tmp_path):
    result = run_cli(
        "demo",
        "-o",
        "out",
        "--model",
        "mobilenet_v2_0.35_96",
        "--images",
        "8",
        "--repeat",
        "4",
        "--rounds",
        "2",
        "--warmup",
        "1",
        cwd=tmp_path,
    )
    trained = json.loads((tmp_path / "out" / "trained" / "report.json").read_text())
    assert trained["model"] == "mobilenet_v2_0.35_96.shapes"
    assert trained["accuracy"]["device_top1"] == trained["accuracy"]["reference_top1"]
    assert "accuracy on shapes validation" in result.stdout
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert (out / "mobilenet_v2_0.35_96.onnx").is_file()
    assert (out / "artifact" / "model.so").is_file() and (out / "artifact" / "artifact.json").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"]["top1_agreement"] == 100.0
    assert report["accuracy"]["max_abs_error"] <= 1e-4
    for key in ("median", "p90"):
        assert report["latency_ms"][key] > 0
    assert report["peers"]["onnxruntime"]["latency_ms"]["median"] > 0
    assert report["peers"]["torch"]["latency_ms"]["median"] > 0
    assert "top-1 agreement" in result.stdout and "onnxruntime" in result.stdout


@pytest.mark.slow
def test_bench_json_report(small_artifact, tmp_path):
    result = run_cli(
        "bench",
        str(small_artifact.directory),
        "--images",
        "4",
        "--repeat",
        "2",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"]["top1_agreement"] == 100.0
    assert set(report["peers"]) == {"onnxruntime", "torch"}


def _start_and_interrupt(args, ready_text, timeout=240):
    """Run a long-lived command until it prints ``ready_text``, then press Ctrl-C; return its output."""
    import os
    import signal
    import time

    # Ctrl-C's default action even when the suite runs in a background job (whose SIGINT is ignored)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_mnv2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines, deadline = [], time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            if ready_text in line or time.monotonic() > deadline:
                break
        assert any(ready_text in line for line in lines), "".join(lines)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with pytest.raises(ProcessLookupError):  # nothing of its process group is left
        for _ in range(100):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    return "".join(lines)


@pytest.mark.slow
def test_tracker_command_runs_until_ctrl_c():
    from edge_mnv2.remote.server import free_port, port_open

    port = free_port()
    out = _start_and_interrupt(["tracker", "--port", str(port)], "RPC tracker listening")
    assert f"127.0.0.1:{port}" in out
    assert not port_open("127.0.0.1", port)


@pytest.mark.slow
def test_device_emulate_registers_with_a_tracker_and_stops_on_ctrl_c(rpi4b_image):
    from edge_mnv2.remote.tracker import LocalTracker

    with LocalTracker() as tracker:
        host, port = tracker.address
        out = _start_and_interrupt(["device", "emulate", "rpi4b", "--tracker", f"{host}:{port}"], "serving on")
        assert "key 'rpi4b'" in out and "not device timings" in out
    import re

    from edge_mnv2.remote.server import port_open

    served = int(re.search(r"serving on 127\.0\.0\.1:(\d+)", out)[1])
    assert not port_open("127.0.0.1", served)  # the server's own process group was stopped too


def test_microcontroller_commands_refuse_the_wrong_artifact_in_one_line(small_artifact, tmp_path):
    host = str(small_artifact.directory)
    assert_one_line_error(run_cli("flash", host), "is not firmware")
    assert_one_line_error(run_cli("bench", host, "--target", "mps3-an547"), "is not firmware")
    assert_one_line_error(
        run_cli("compile", "mobilenet_v2_0.35_96", "--target", "nrf52840dk", "-o", str(tmp_path / "nrf")),
        "does not fit nrf52840dk",
    )


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`edge-mnv2 models | head`: no traceback when the pipe closes, exit 141 as a shell reports SIGPIPE."""
    code = (
        "import sys\nfrom edge_mnv2.cli import commands, main\n"
        "commands.cmd_models = lambda args: [print('x' * 100) for _ in range(100_000)] and 0\n"
        "sys.exit(main(['-q', 'models']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"xxx")
    proc.stdout.close()  # 10 MB more to write: the pipe breaks
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Broken pipe" not in err, err
