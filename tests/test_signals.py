"""SIGTERM and SIGHUP stop a command and everything it started, as Ctrl-C does (edge_mnv2.signals).

The end-to-end tests start a command, note every process it started (by parent chain, and the
sessions they run in: the tracker, the RPC servers and qemu run in sessions of their own), send the
command alone a SIGTERM, as ``kill``, systemd or a container runtime would, and check that nothing of
those sessions is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_mnv2 import cli
from edge_mnv2.signals import Terminated, handled, terminating_interrupts

# -- the context manager -------------------------------------------------------------------------------


def test_sigterm_and_sighup_raise_a_keyboard_interrupt_inside_and_handlers_come_back_after():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with pytest.raises(KeyboardInterrupt) as caught, terminating_interrupts():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs at the next Python step
        assert isinstance(caught.value, Terminated) and caught.value.signum == signum
        assert {s: signal.getsignal(s) for s in before} == before


def test_a_repeat_during_cleanup_is_ignored_and_an_ignored_sighup_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with terminating_interrupts():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Terminated:
                os.kill(os.getpid(), signal.SIGTERM)  # the cleanup's: not raised
                time.sleep(0.05)
            else:
                pytest.fail("SIGTERM raised nothing")
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_outside_the_main_thread_it_changes_nothing():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def enter():
        with terminating_interrupts():
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=enter)
    t.start()
    t.join()
    assert seen == [before]


def test_the_command_exits_130_on_sigterm_as_on_ctrl_c(monkeypatch, capsys):
    def models(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    monkeypatch.setattr(cli.commands, "cmd_models", models)  # the parser binds it when main builds it
    monkeypatch.setattr(cli.runtime_threads, "configure", lambda: 1)  # leaves this process's environment be
    assert cli.main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_handled_always_takes_sigint_keeps_an_ignored_sighup_ignored_and_restores(monkeypatch):
    seen = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with handled(lambda signum, frame: seen.append(signum), (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)):
            for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
                os.kill(os.getpid(), signum)
                time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert seen == [signal.SIGINT, signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# -- the commands ---------------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (state, parent pid, session id, command line) of every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry)] = (fields[0], int(fields[1]), int(fields[3]), cmdline)
    return out


def _started_by(pid: int) -> tuple[dict[int, str], set[int]]:
    """The processes ``pid`` started, directly or not (pid -> command line), and the sessions of all."""
    procs = _processes()
    family = {pid}
    while True:
        children = {p for p, (_, parent, _, _) in procs.items() if parent in family} - family
        if not children:
            break
        family |= children
    return {p: procs[p][3] for p in family - {pid} if p in procs}, {procs[p][2] for p in family if p in procs}


def _left_in(sessions: set[int], wait: float = 5.0) -> dict[int, str]:
    """The live processes (zombies hold no port) still in ``sessions``, after up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        left = {p: cmd for p, (state, _, sid, cmd) in _processes().items() if sid in sessions and state != "Z"}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _terminate(args: list[str], ready, expect_code: int, timeout: float = 240) -> tuple[str, dict[int, str]]:
    """Start ``edge-mnv2 ARGS``; once ``ready(output, started)`` holds, SIGTERM the command alone and check
    that it exits with ``expect_code`` and leaves nothing behind. Returns its output and what it had started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_mnv2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    sessions: set[int] = {proc.pid}
    try:
        deadline = time.monotonic() + timeout
        while True:
            started, sessions = _started_by(proc.pid)
            if ready("".join(lines), started):
                break
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
        reader.join(timeout=10)
        out = "".join(lines)
        assert code == expect_code, out
        assert _left_in(sessions) == {}, out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _left_in(sessions, wait=0):  # never leave a test's strays behind
            os.kill(pid, signal.SIGKILL)
    return out, started


def _running(*names):
    """ready(): each of ``names`` is in the command line of a process the command started."""
    return lambda out, started: all(any(name in cmd for cmd in started.values()) for name in names)


@pytest.mark.slow
def test_tracker_stops_its_rpc_tracker_and_popen_worker_on_sigterm():
    from edge_mnv2.remote.server import free_port, port_open

    port = free_port()
    out, started = _terminate(
        ["tracker", "--port", str(port)], lambda out, started: "RPC tracker listening" in out, expect_code=0
    )
    assert _running("tvm.exec.rpc_tracker", "popen_worker")(out, started), started
    assert "stopping the tracker" in out
    assert not port_open("127.0.0.1", port)


@pytest.mark.slow
def test_device_emulate_stops_the_emulated_server_on_sigterm(rpi4b_image):
    from edge_mnv2.remote.server import port_open

    out, started = _terminate(["device", "emulate", "rpi4b"], lambda out, started: "serving on" in out, expect_code=0)
    assert _running("qemu-aarch64", "tvm.exec.rpc_server")(out, started), started
    import re

    assert not port_open("127.0.0.1", int(re.search(r"serving on 127\.0\.0\.1:(\d+)", out)[1]))


@pytest.mark.slow
def test_device_emulate_stops_a_server_still_starting_on_sigterm(rpi4b_image):
    # qemu is up, TVM not yet (it takes 10-60 s under emulation): the server's start is what is interrupted
    out, _ = _terminate(["device", "emulate", "rpi4b"], _running("qemu-aarch64"), expect_code=130)
    assert "serving on" not in out


@pytest.fixture(scope="module")
def mps2_firmware(tmp_path_factory):
    from edge_mnv2.compile import compile_model

    return compile_model("mobilenet_v2_0.35_96.shapes", "mps2-an386", tmp_path_factory.mktemp("mps2") / "fw")


@pytest.mark.slow
def test_flash_on_an_emulated_board_stops_qemu_on_sigterm(mps2_firmware):
    out, started = _terminate(
        ["flash", str(mps2_firmware.directory)], lambda out, started: "its UART is" in out, expect_code=0
    )
    assert _running("qemu-system-arm")(out, started), started


@pytest.mark.slow
def test_bench_on_the_embedded_local_server_stops_it_on_sigterm(small_artifact):
    _terminate(
        ["bench", str(small_artifact.directory), "--images", "4"], _running("tvm.exec.rpc_server"), expect_code=130
    )


@pytest.mark.slow
def test_a_count_started_after_count_many_stopped_is_killed_at_once(rpi4b_image, tmp_path):
    import numpy as np

    from edge_mnv2.errors import DeviceError
    from edge_mnv2.remote.instructions import counting
    from edge_mnv2.remote.instructions.plugin import build_plugin

    cancel = threading.Event()
    cancel.set()  # as count_many does (under the lock) when Ctrl-C or SIGTERM stops it
    started = time.monotonic()
    with pytest.raises(DeviceError, match="cancelled"):
        counting.count_runtime(
            rpi4b_image,
            "tvm",
            tmp_path / "model.so",
            np.zeros((1, 3), np.float32),
            plugin=build_plugin(),
            cancel=cancel,
        )
    assert time.monotonic() - started < 30 and not counting._running
