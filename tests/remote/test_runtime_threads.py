"""TVM's runtime gets one thread per physical core, and a count the user set is kept."""

import os
import subprocess
import sys

import pytest

from edge_mnv2.remote import runtime_threads


def fake_sysfs(tmp_path, siblings: dict[int, str]):
    for cpu, text in siblings.items():
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "thread_siblings_list").write_text(text + "\n")
    return tmp_path


def test_two_hardware_threads_of_a_core_count_once(tmp_path):
    sysfs = fake_sysfs(tmp_path, {0: "0,4", 1: "1,5", 2: "2,6", 3: "3,7", 4: "0,4", 5: "1,5", 6: "2,6", 7: "3,7"})
    assert runtime_threads.physical_cores(set(range(8)), sysfs) == 4
    assert runtime_threads.physical_cores({0, 4, 1}, sysfs) == 2  # only the CPUs we may run on


def test_one_thread_per_core_counts_every_cpu(tmp_path):
    # a 2-vCPU cloud VM: TVM's default (half the logical CPUs on x86) would use one of them
    sysfs = fake_sysfs(tmp_path, {0: "0", 1: "1"})
    assert runtime_threads.physical_cores({0, 1}, sysfs) == 2


def test_unreadable_topology_counts_each_cpu(tmp_path):
    assert runtime_threads.physical_cores({0, 1, 2}, tmp_path) == 3


def test_configure_sets_the_physical_core_count():
    env = {}
    assert runtime_threads.configure(env) == runtime_threads.physical_cores()
    assert env == {"TVM_NUM_THREADS": str(runtime_threads.physical_cores()), "TVM_BIND_THREADS": "0"}


@pytest.mark.parametrize(
    "env, threads",
    [
        ({"TVM_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "5"}, 5),
        ({"TVM_NUM_THREADS": "1", "OMP_NUM_THREADS": "5"}, 1),  # TVM's own precedence
        ({"TVM_NUM_THREADS": "2", "TVM_BIND_THREADS": "1"}, 2),  # pinned threads, asked for
    ],
)
def test_a_count_and_a_binding_the_user_set_are_kept(env, threads):
    given = dict(env)
    assert runtime_threads.configure(env) == threads
    assert env == {"TVM_BIND_THREADS": "0", **given}


def test_tvm_runtime_uses_the_configured_count():
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    expected = runtime_threads.configure(env)
    out = subprocess.run(
        [sys.executable, "-c", "from edge_mnv2.remote import runtime_threads as r; print(r.tvm_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == expected


@pytest.mark.parametrize("env", [{"TVM_NUM_THREADS": "0"}, {"TVM_NUM_THREADS": "four"}, {"OMP_NUM_THREADS": ""}])
def test_a_count_that_is_not_one_is_refused(env):
    from edge_mnv2.errors import EdgeMnv2Error

    with pytest.raises(EdgeMnv2Error, match="is not a thread count"):
        runtime_threads.configure(env)


def test_the_cli_says_so_on_one_line():
    env = dict(os.environ, TVM_NUM_THREADS="0")
    out = subprocess.run([sys.executable, "-m", "edge_mnv2", "models"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "edge-mnv2: error: TVM_NUM_THREADS='0' is not a thread count: set it to a whole "
        "number of at least 1, or unset it to use one thread per physical core"
    )


AFFINITIES = """
import os
from edge_mnv2.remote import runtime_threads
runtime_threads.configure()
runtime_threads.tvm_threads()   # starts TVM's thread pool, which pins its workers unless told not to
tasks = os.listdir("/proc/self/task")
print(len(tasks), *sorted({open(f"/proc/self/task/{t}/status").read().split("Cpus_allowed_list:")[1].split()[0]
                           for t in tasks}))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: there is nothing to pin to")
@pytest.mark.parametrize("bind, pinned", [(None, False), ("1", True)])
def test_tvm_threads_are_left_to_the_os_unless_pinning_is_asked_for(bind, pinned):
    env = {k: v for k, v in os.environ.items() if k != "TVM_BIND_THREADS"}
    if bind is not None:
        env["TVM_BIND_THREADS"] = bind
    out = subprocess.run([sys.executable, "-c", AFFINITIES], env=env, capture_output=True, text=True, check=True)
    threads, *allowed = out.stdout.split()
    assert int(threads) > 1  # the pool's workers are there
    assert (len(allowed) > 1) == pinned  # a pinned worker may run on fewer CPUs than the process
