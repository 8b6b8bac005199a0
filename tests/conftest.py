"""Shared fixtures: compiled models, and real TVM RPC servers and trackers on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.tracker import LocalTracker

SMALL_MODEL = "mobilenet_v2_0.35_96"
TRAINED_MODEL = "mobilenet_v2_0.35_96.shapes"


def session_folder(tmp_path_factory, name: str) -> Path:
    """A folder shared by the session's pytest-xdist workers (each worker has its own folder below it)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    (root / "shared").mkdir(exist_ok=True)
    return root / "shared" / name


def built_once(tmp_path_factory, name: str, model: str, target: str):
    """``model`` compiled for ``target`` into the shared folder ``name``, once for all workers.
    Tests read these builds; a test that changes files works on a copy."""
    from edge_mnv2.artifact import METADATA_FILE, load_artifact
    from edge_mnv2.compile import compile_model
    from edge_mnv2.remote.emulator import build_lock

    folder = session_folder(tmp_path_factory, name)
    with build_lock(folder):  # the first worker builds, the others wait and reuse its build
        if (folder / METADATA_FILE).is_file():  # compile writes it last (staged output)
            return load_artifact(folder)
        return compile_model(model, target, folder)


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory):
    """mobilenet_v2_0.35_96 (seeded random weights) compiled for the host, built once per session."""
    return built_once(tmp_path_factory, "small", SMALL_MODEL, "host")


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory):
    """The shipped trained model (shapes, 10 classes) compiled for the host, built once per session."""
    return built_once(tmp_path_factory, "trained", TRAINED_MODEL, "host")


@pytest.fixture(scope="session")
def rpi4b_artifact(tmp_path_factory):
    """The shipped trained model cross-compiled for the Raspberry Pi 4 (aarch64), built once per session."""
    return built_once(tmp_path_factory, "rpi4b", TRAINED_MODEL, "rpi4b")


@pytest.fixture(scope="session")
def rpc_server():
    """A TVM RPC server on 127.0.0.1, shared by the session's tests."""
    with LocalRPCServer() as server:
        yield server


@pytest.fixture(scope="session")
def rpc_tracker():
    """TVM's RPC tracker on 127.0.0.1, with one local server registered under the key ``host``."""
    with LocalTracker() as tracker, LocalRPCServer(tracker=tracker.address, key="host"):
        tracker.wait_for_key("host")
        yield tracker.address


@pytest.fixture(scope="session")
def rpi4b_image():
    """The emulated Raspberry Pi 4 image (built once, cached in ~/.cache/edge-mnv2)."""
    from edge_mnv2.remote.emulator import EmulatorRecipe, prepare
    from edge_mnv2.targets import load_target

    return prepare(EmulatorRecipe.from_target(load_target("rpi4b")))


# Files whose tests take several minutes in all go first. `make test` runs one xdist worker per CPU and
# keeps a file's tests on one worker (--dist loadfile), handing out files in collection order: started
# early, the long files run side by side, instead of one of them ending the run alone.
LONG_FILES_FIRST = (
    "tuning/test_run.py",
    "test_cli.py",
    "compile/test_compile_defaults.py",
    "bench/test_bench_tasks.py",
    "sweep/test_sweep.py",
    "remote/test_emulator.py",
    "tuning/test_library.py",
    "tuning/test_seed.py",
    "test_wheel.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))
