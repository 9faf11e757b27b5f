"""What ``pip install -e ".[dev]"`` gives a generated project, made offline for the docs tests.

Run with the project's activated virtualenv's Python, from the project's root, with the
suite's site-packages directory and its scripts directory: the virtualenv gets the suite's
packages (Flask, gunicorn, pytest, ruff, mypy...) through a ``.pth`` file, the project itself
in editable mode (pip, without an index), and the commands its ``[dev]`` extra would put on
``PATH``.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

# Commands the project's dependencies install, run as modules of the virtualenv's Python.
MODULE_COMMANDS = {"flask": "flask", "gunicorn": "gunicorn", "pytest": "pytest", "mypy": "mypy"}
# Commands that are programs of their own, linked from the suite's scripts.
PROGRAMS = ("ruff",)


def main(suite_packages: str, suite_scripts: str) -> None:
    """Link the suite's packages and the project, and make the dev commands."""
    packages = Path(site.getsitepackages()[0])
    (packages / "suite-packages.pth").write_text(suite_packages + "\n")
    # An editable install by hatchling, the project's build backend, is a path file too.
    (packages / "_editable_project.pth").write_text(str(Path("src").resolve()) + "\n")
    scripts = Path(sys.prefix, "bin")
    for name, module in MODULE_COMMANDS.items():
        script = scripts / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        script.chmod(0o755)
    for name in PROGRAMS:
        target = scripts / name
        if not target.exists():
            target.symlink_to(Path(suite_scripts, name))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
