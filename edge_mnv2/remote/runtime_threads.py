"""How many threads TVM's runtime gives a model's kernels on this machine.

Unless ``TVM_NUM_THREADS`` (or ``OMP_NUM_THREADS``) says otherwise, TVM's thread pool takes half the
logical CPUs on x86, assuming every core runs two hardware threads. Where cores have one thread each
(most cloud VMs hand out one vCPU per core) that leaves half the machine idle: on a 2-vCPU host every
tuned kernel ran on one core while ONNX Runtime used both. edge-mnv2 therefore sets
``TVM_NUM_THREADS`` to the number of physical cores it may run on, before TVM's pool starts, in every
process that runs kernels here (the CLI, the local RPC server, MetaSchedule's measuring workers); a
value the user set is kept. The host target's ``num-cores = "native"`` is the same number.

It also sets ``TVM_BIND_THREADS=0`` (again keeping a value the user set): TVM's threads are left to
the OS. By default TVM pins each worker thread to one core and leaves the calling thread free to move;
on this 2-vCPU VM a pinned process now and then ran at about twice its time for its whole life (the
trained mobilenet_v2_0.35_96 under ``edge-mnv2 bench``: a median of 0.48-0.53 ms against 0.25-0.29),
in 7 of 14 processes pinned against 3 of 15 unpinned. ``benchmarks/thread_placement.py`` found the
calling thread on the pinned worker's CPU after 3-14 of 20 turns in every pinned process, and after
none unpinned. Where each runtime has a process of its own and its median is taken over many rounds
(``benchmarks/thread_binding.py``) neither setting won.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

from edge_mnv2.errors import EdgeMnv2Error

ENV = "TVM_NUM_THREADS"
FALLBACK_ENV = "OMP_NUM_THREADS"  # TVM reads it when TVM_NUM_THREADS is not set
BIND_ENV = "TVM_BIND_THREADS"  # "0": TVM leaves its threads' placement to the OS
SYSFS_CPUS = Path("/sys/devices/system/cpu")


def physical_cores(cpus: set[int] | None = None, sysfs: Path = SYSFS_CPUS) -> int:
    """Physical cores among ``cpus`` (default: the CPUs this process may run on).

    Hardware threads of one core share a ``thread_siblings_list``; a CPU whose topology cannot be
    read counts as a core of its own.
    """
    cpus = os.sched_getaffinity(0) if cpus is None else cpus
    cores = set()
    for cpu in cpus:
        try:
            cores.add((sysfs / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(f"cpu{cpu}")
    return max(1, len(cores))


def configure(environ: MutableMapping[str, str] | None = None) -> int:
    """Give TVM's runtime one thread per physical core in ``environ`` (default: this process's
    environment, which child processes inherit), unless a thread count is set there already, and
    leave the threads' placement to the OS unless ``TVM_BIND_THREADS`` is set there already.

    Returns the thread count TVM will use; a count that is not a positive whole number is refused
    (TVM would quietly read it as 1). Call it before TVM's thread pool starts (the first
    parallel kernel): the pool reads the variable once.
    """
    environ = os.environ if environ is None else environ
    environ.setdefault(BIND_ENV, "0")
    for name in (ENV, FALLBACK_ENV):
        value = environ.get(name)
        if value is None:
            continue
        if not value.strip().isdigit() or int(value) < 1:
            raise EdgeMnv2Error(
                f"{name}={value!r} is not a thread count: set it to a whole number of at "
                f"least 1, or unset it to use one thread per physical core"
            )
        return int(value)
    cores = physical_cores()
    environ[ENV] = str(cores)
    return cores


def tvm_threads() -> int:
    """The thread count TVM's runtime uses in this process (starts its pool if needed)."""
    import tvm  # noqa: F401  (loads the runtime, which registers the function)
    import tvm_ffi

    return int(tvm_ffi.get_global_func("runtime.NumThreads")())
