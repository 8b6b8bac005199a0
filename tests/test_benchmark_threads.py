"""benchmarks/thread_placement.py and thread_binding.py: they run on a host build and refuse anything else."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import thread_placement  # noqa: E402


def run(script, *args, **env):
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_every_thread_is_read_with_its_cpu_and_time():
    threads = thread_placement.thread_cpus()
    assert os.getpid() in threads  # the main thread's id is the process id
    cpu, ticks = threads[os.getpid()]
    assert cpu in os.sched_getaffinity(0) and ticks >= 0


@pytest.mark.parametrize("script", ["thread_placement.py", "thread_binding.py"])
def test_a_folder_that_is_not_an_artifact_is_refused_on_one_line(script, tmp_path):
    result = run(script, tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(tmp_path) in result.stderr


@pytest.mark.slow
def test_placement_reports_every_turn_with_the_binding_asked_for(small_artifact):
    result = run("thread_placement.py", small_artifact.directory, "--rounds", 3, "--runs", 2, TVM_BIND_THREADS="1")
    assert result.returncode == 0, result.stderr
    found = re.search(
        r"TVM_BIND_THREADS=1, (\d+) threads: median ([\d.]+) ms, fastest ([\d.]+) ms, .* after "
        r"(\d+) of (\d+) turns",
        result.stdout,
    )
    assert found, result.stdout
    threads, median, fastest, shared, turns = found.groups()
    assert float(fastest) <= float(median) and int(shared) <= int(turns) <= 3


@pytest.mark.slow
def test_binding_times_both_settings_beside_onnx_runtime(small_artifact):
    result = run("thread_binding.py", small_artifact.directory, "--rounds", 1, "--runs", 2)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| TVM, threads pinned (TVM's default)",
        "| TVM, threads left to the OS (edge-mnv2's)",
        "| ONNX Runtime (default threads)",
    ]
    assert rows[-1].endswith("| 1.00 |")
