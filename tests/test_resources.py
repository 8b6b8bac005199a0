"""The one rule for where targets/, firmware/ and tuning_logs/ are found (``edge_mnv2/resources.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_mnv2 import resources
from edge_mnv2.resources import DATA_ENV, FOLDER_ENVS, FOLDERS, data_dir, logs_read_roots, logs_write_root

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (DATA_ENV, "XDG_DATA_HOME", *FOLDER_ENVS.values()):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """As from a wheel: no checkout above the package, the data in the package's ``_data/``."""
    shipped = tmp_path / "site-packages" / "edge_mnv2" / "_data"
    monkeypatch.setattr(resources, "checkout_root", lambda: None)
    monkeypatch.setattr(resources, "PACKAGED_DATA", shipped)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return shipped


def test_a_checkout_reads_its_top_level_folders():
    assert resources.checkout_root() == REPO
    for folder in FOLDERS:
        assert data_dir(folder) == REPO / folder
    assert logs_write_root() == REPO / "tuning_logs" and logs_read_roots() == [REPO / "tuning_logs"]


def test_the_folder_variable_comes_before_the_data_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    assert {folder: data_dir(folder) for folder in FOLDERS} == {f: tmp_path / "data" / f for f in FOLDERS}
    monkeypatch.setenv(FOLDER_ENVS["targets"], str(tmp_path / "mine"))
    assert data_dir("targets") == tmp_path / "mine" and data_dir("firmware") == tmp_path / "data" / "firmware"
    assert logs_read_roots() == [tmp_path / "data" / "tuning_logs"]  # one folder, read and written


def test_an_installed_tool_reads_its_package_and_tunes_into_the_users_folder(installed, tmp_path, monkeypatch):
    for folder in FOLDERS:
        assert data_dir(folder) == installed / folder
    user = tmp_path / "home" / ".local" / "share" / "edge-mnv2" / "tuning_logs"
    assert logs_write_root() == user
    assert logs_read_roots() == [user, installed / "tuning_logs"]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert logs_write_root() == tmp_path / "xdg" / "edge-mnv2" / "tuning_logs"
    monkeypatch.setenv(FOLDER_ENVS["tuning_logs"], str(tmp_path / "logs"))  # the variable still wins
    assert logs_read_roots() == [tmp_path / "logs"]


def test_an_installed_tool_prefers_the_users_log_to_the_shipped_one(installed, tmp_path):
    from edge_mnv2.targets import load_target
    from edge_mnv2.tuning.logs import DB_FILES, find_log, tuning_log_path
    from edge_mnv2.tuning.lookup import candidate_logs

    def make(root: Path, model: str) -> Path:
        path = root / "rpi4b" / model
        path.mkdir(parents=True)
        for name in DB_FILES:
            (path / name).write_text("")
        return path

    shipped = make(installed / "tuning_logs", "mobilenet_v2_0.35_96")
    other = make(installed / "tuning_logs", "mobilenet_v2_1.0_224")
    assert find_log("rpi4b", "mobilenet_v2_0.35_96.shapes") == shipped
    user_root = logs_write_root()
    rpi4b = load_target(str(REPO / "targets" / "rpi4b.toml"))
    path, seed = tuning_log_path(rpi4b, "mobilenet_v2_0.35_96")
    assert path == user_root / "rpi4b" / "mobilenet_v2_0.35_96" and seed is None  # never into the package
    own = make(user_root, "mobilenet_v2_0.35_96")
    assert find_log("rpi4b", "mobilenet_v2_0.35_96.shapes") == own
    assert candidate_logs("rpi4b", None) == [own, shipped, other]


def test_describe_gives_the_rule_s_answer():
    shown = json.loads(json.dumps(resources.describe()))  # what ``python -m edge_mnv2.resources`` prints
    assert shown["checkout"] == str(REPO)
    assert shown["targets"] == {"path": str(REPO / "targets"), "source": "checkout"}


def test_a_variable_pointing_nowhere_is_named_in_the_error(monkeypatch, tmp_path):
    from edge_mnv2.errors import UnknownTargetError
    from edge_mnv2.targets import load_target

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UnknownTargetError, match=r"\$EDGE_MNV2_DATA chose it: unset it"):
        load_target("rpi4b")
    monkeypatch.delenv(DATA_ENV)
    assert load_target("rpi4b").name == "rpi4b"  # the checkout's, no variable to blame
