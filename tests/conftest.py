"""Shared fixtures: a small compiled model, and real TVM RPC servers and trackers on 127.0.0.1."""

from __future__ import annotations

import pytest

from edge_mnv2.remote.server import LocalRPCServer
from edge_mnv2.remote.tracker import LocalTracker

SMALL_MODEL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory):
    """mobilenet_v2_0.35_96 (seeded random weights) compiled for the host, built once per session."""
    from edge_mnv2.compile import compile_model

    return compile_model(SMALL_MODEL, "host", tmp_path_factory.mktemp("artifacts") / "small")


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


TRAINED_MODEL = "mobilenet_v2_0.35_96.shapes"


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory):
    """The shipped trained model (shapes, 10 classes) compiled for the host, built once per session."""
    from edge_mnv2.compile import compile_model

    return compile_model(TRAINED_MODEL, "host", tmp_path_factory.mktemp("artifacts") / "trained")


@pytest.fixture(scope="session")
def rpi4b_artifact(tmp_path_factory):
    """The shipped trained model cross-compiled for the Raspberry Pi 4 (aarch64)."""
    from edge_mnv2.compile import compile_model

    return compile_model(TRAINED_MODEL, "rpi4b", tmp_path_factory.mktemp("artifacts") / "rpi4b")


@pytest.fixture(scope="session")
def rpi4b_image():
    """The emulated Raspberry Pi 4 image (built once, cached in ~/.cache/edge-mnv2)."""
    from edge_mnv2.remote.emulator import EmulatorRecipe, prepare
    from edge_mnv2.targets import load_target

    return prepare(EmulatorRecipe.from_target(load_target("rpi4b")))


# Files whose tests take several minutes in all go first. `make test` runs one xdist worker per CPU and
# keeps a file's tests on one worker (--dist loadfile), handing out files in collection order: started
# early, the long files run side by side, instead of one of them ending the run alone.
LONG_FILES_FIRST = ("tuning/test_run.py", "test_cli.py", "test_compile_defaults.py", "tuning/test_library.py",
                    "test_bench_tasks.py", "tuning/test_seed.py", "sweep/test_sweep.py", "remote/test_emulator.py",
                    "test_wheel.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))
