"""gunicorn started from a command line (Procfile, Dockerfile, scripts, units, compose files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffold_cli.check._gunicorn import check_command_lines, is_command_file


def codes(text: str, *, configured: bool = False) -> list[tuple[str, int, int]]:
    findings = check_command_lines(Path("Procfile"), text, has_default_config=configured)
    return [(f.code, f.line, f.column) for f in findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web: gunicorn app:app -w 4", [("FS201", 1, 6)]),
        ("web: gunicorn -k sync app:app", [("FS201", 1, 6)]),
        ("ExecStart=/srv/venv/bin/gunicorn --workers 2 app:app", [("FS201", 1, 25)]),
        ('CMD ["gunicorn", "-k", "gthread", "app:app"]', [("FS202", 1, 7)]),
        ("command: gunicorn --worker-class=gthread --threads=4 app:app", [("FS202", 1, 10)]),
        ("exec gunicorn -kgevent -t 0 app:app && echo done", [("FS203", 1, 6)]),
        ("python -m gunicorn --threads 32 app:app", []),  # sync with threads is gthread
        ("web: gunicorn -k gevent app:app", []),
        ("web: gunicorn -k $WORKER --threads $THREADS app:app", []),  # not known here
        ("RUN pip install gunicorn flask", []),
        ('RUN pip install "gunicorn[gevent]>=23"', []),
        ("# web: gunicorn app:app", []),
        ("The gunicorn docs say so.", []),
        ("web: gunicorn \\", []),
    ],
)
def test_command_lines(text: str, expected: list[tuple[str, int, int]]) -> None:
    assert codes(text) == expected


def test_a_configuration_file_decides_what_the_command_line_leaves_out() -> None:
    assert codes("web: gunicorn -c deploy/gunicorn.conf.py app:app") == []
    assert codes("web: gunicorn app:app", configured=True) == []  # ./gunicorn.conf.py
    # What the command line says itself is still judged.
    assert codes("web: gunicorn -c g.py -k sync app:app") == [("FS201", 1, 6)]
    assert codes("web: gunicorn -c g.py -k gthread app:app") == []  # threads: from g.py


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Procfile", True),
        ("Dockerfile", True),
        ("Dockerfile.prod", True),
        ("web.dockerfile", True),
        ("start.sh", True),
        ("app.service", True),
        ("docker-compose.yml", True),
        ("compose.yaml", True),
        ("README.md", False),
        ("gunicorn.conf.py", False),
    ],
)
def test_command_files(name: str, expected: bool) -> None:
    assert is_command_file(Path(name)) is expected
