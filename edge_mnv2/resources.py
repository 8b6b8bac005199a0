"""Where edge-mnv2 finds the data it ships: target files, firmware sources and tuning logs.

The repository keeps them in top-level folders (``targets/``, ``firmware/``, ``tuning_logs/``); a wheel
carries copies of them inside the package, in ``edge_mnv2/_data/<folder>/`` (``setup.py`` copies them
there when the wheel is built). One rule finds a folder, first match wins:

1. the folder's own variable: ``$EDGE_MNV2_TARGETS``, ``$EDGE_MNV2_FIRMWARE``, ``$EDGE_MNV2_TUNING_LOGS``;
2. ``$EDGE_MNV2_DATA/<folder>``: one variable for a whole data tree laid out like the repository;
3. the checkout's top-level ``<folder>``, when the package runs from a source checkout (plain, editable
   install or ``PYTHONPATH``): the package's parent holds the project's ``pyproject.toml``;
4. the installed package's ``edge_mnv2/_data/<folder>``.

Tuning logs are also written, and an installed package is no place to write: for an installed tool (rule
4) ``tune`` writes new logs to the user's folder, ``$XDG_DATA_HOME/edge-mnv2/tuning_logs`` (by default
``~/.local/share/edge-mnv2/tuning_logs``), and logs are looked up there first, then in the shipped ones.
In cases 1 to 3 the one folder is both read and written, as before.

Trained weights (``edge_mnv2/pretrained/``) live inside the package in the checkout too, so they need no
rule.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "EDGE_MNV2_DATA"
TARGETS_ENV = "EDGE_MNV2_TARGETS"
FIRMWARE_ENV = "EDGE_MNV2_FIRMWARE"
LOGS_ENV = "EDGE_MNV2_TUNING_LOGS"
FOLDER_ENVS = {"targets": TARGETS_ENV, "firmware": FIRMWARE_ENV, "tuning_logs": LOGS_ENV}
FOLDERS = tuple(FOLDER_ENVS)

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA = PACKAGE_DIR / "_data"
PROJECT_NAME = "edge-mnv2"


def checkout_root() -> Path | None:
    """The source checkout the package runs from (the folder above ``edge_mnv2/`` whose ``pyproject.toml``
    is this project's), or None for an installed package."""
    root = PACKAGE_DIR.parent
    project = root / "pyproject.toml"
    try:
        text = project.read_text()
    except OSError:
        return None
    return root if f'name = "{PROJECT_NAME}"' in text else None


def data_source(folder: str) -> str:
    """Which step of the rule gives ``folder``: ``env``, ``data-env``, ``checkout`` or ``package``."""
    if os.environ.get(FOLDER_ENVS[folder]):
        return "env"
    if os.environ.get(DATA_ENV):
        return "data-env"
    return "checkout" if checkout_root() is not None else "package"


def data_dir(folder: str) -> Path:
    """The folder ``folder`` (one of ``FOLDERS``) is read from, by the module's rule."""
    source = data_source(folder)
    if source == "env":
        return Path(os.environ[FOLDER_ENVS[folder]])
    if source == "data-env":
        return Path(os.environ[DATA_ENV]) / folder
    if source == "checkout":
        return checkout_root() / folder
    return PACKAGED_DATA / folder


def chosen_by(folder: str) -> str | None:
    """The environment variable that chose ``folder``'s location (for error messages), or None."""
    source = data_source(folder)
    return FOLDER_ENVS[folder] if source == "env" else DATA_ENV if source == "data-env" else None


def user_data_dir() -> Path:
    """The user's own edge-mnv2 data: ``$XDG_DATA_HOME/edge-mnv2`` (``~/.local/share/edge-mnv2``)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / PROJECT_NAME


def logs_write_root() -> Path:
    """Where ``tune`` writes logs: the tuning-logs folder, except for an installed tool, the user's."""
    if data_source("tuning_logs") == "package":
        return user_data_dir() / "tuning_logs"
    return data_dir("tuning_logs")


def logs_read_roots() -> list[Path]:
    """Where logs are looked up, best first: where ``tune`` writes, then (installed tool) the shipped logs."""
    roots = [logs_write_root()]
    shipped = data_dir("tuning_logs")
    return roots if shipped == roots[0] else roots + [shipped]


def describe() -> dict:
    """Each folder with where it is read from and which step of the rule gave it (``python -m
    edge_mnv2.resources`` prints it)."""
    out = {folder: {"path": str(data_dir(folder)), "source": data_source(folder)} for folder in FOLDERS}
    out["tuning_logs"]["written_to"] = str(logs_write_root())
    out["checkout"] = str(checkout_root()) if checkout_root() else None
    return out


if __name__ == "__main__":  # python -m edge_mnv2.resources: where this install finds its data
    import json

    print(json.dumps(describe(), indent=2))
