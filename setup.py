"""Build hook: copy the shipped policy packs and the demo's data files into the wheel.

``policies/`` (the default pack), ``packs/`` (further packs, e.g. ``eu-personal-data``)
and ``fixtures/`` stay where they are in the repository (the tests and
the CI workflows use them there); a built wheel carries copies as package data under
``audit/_data/`` (see audit/resources.py). Only data files are copied: the fixture
keys, their passphrase and the moto estate code are test scaffolding and never ship.
Editable installs read the repository directly, so the hook skips them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEMO_FILES = ("events.jsonl", "approvals.jsonl", "residency/inventory-2022-06.yaml")


class BuildWithData(build_py):
    """build_py that also copies the shipped data into ``audit/_data``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        data = Path(self.build_lib) / "audit" / "_data"
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(ROOT / "policies", data / "policies", ignore=shutil.ignore_patterns("__pycache__", ".*"))
        shutil.copytree(ROOT / "packs", data / "packs", ignore=shutil.ignore_patterns("__pycache__", ".*"))
        for name in DEMO_FILES:
            dest = data / "demo" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "fixtures" / name, dest)


setup(cmdclass={"build_py": BuildWithData})
