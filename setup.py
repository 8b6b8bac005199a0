"""The build hook that puts the repository's top-level data folders into the wheel.

``targets/``, ``firmware/`` and ``tuning_logs/`` stay at the top of the repository, where a checkout
(or an editable install) reads them; a wheel carries copies in ``edge_mnv2/_data/<folder>/``, where an
installed tool reads them (the rule is in ``edge_mnv2/resources.py``). The rest of the configuration is
in ``pyproject.toml``.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("targets", "firmware", "tuning_logs")
SKIP_SUFFIXES = (".partial", ".pyc")


def shipped_files(folder: str) -> list[Path]:
    """The folder's files that ship: in a git checkout, the tracked ones (a user's own untracked logs stay
    out); elsewhere (an sdist), every file but leftovers of killed writes."""
    if (ROOT / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "ls-files", "-z", "--", folder], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout
            return [ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()]
        except (OSError, subprocess.CalledProcessError):
            pass
    return sorted(
        p
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and not p.name.endswith(SKIP_SUFFIXES) and "__pycache__" not in p.parts
    )


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout, which reads the top-level folders
        data = Path(self.build_lib) / "edge_mnv2" / "_data"
        shutil.rmtree(data, ignore_errors=True)  # build/ outlives builds: no stale files from an old one
        for folder in DATA_FOLDERS:
            for src in shipped_files(folder):
                dest = data / src.relative_to(ROOT)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)


setup(cmdclass={"build_py": BuildPyWithData})
