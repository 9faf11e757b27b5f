"""gunicorn as it is started: command lines in Procfiles, Dockerfiles, scripts, units and YAML
files, merged with GUNICORN_CMD_ARGS and the configuration file they load, as gunicorn does
(configuration file < GUNICORN_CMD_ARGS < command line). What cannot be known is not judged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scaffold_cli.check import check_paths
from scaffold_cli.check._gunicorn import (
    _FLAGS,
    _OPTIONS,
    _VALUED,
    CONFIG_SETTINGS,
    commands,
    is_command_file,
)

from .test_rules import CORPUS

APP = CORPUS / "FS201" / "bad" / "app.py"  # an app that streams


def findings(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, str, int, int]]:
    """The FS2xx findings of a project of *files* (by relative path) and a streaming app."""
    shutil.copy(APP, tmp_path / "app.py")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = check_paths([tmp_path], select=["FS2"])
    return [(f.code, f.path.relative_to(tmp_path).as_posix(), f.line, f.column) for f in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web: gunicorn app:app -w 4", [("FS201", 1, 6)]),
        ("web: gunicorn -k sync app:app", [("FS201", 1, 6)]),
        ('CMD ["gunicorn", "-k", "gthread", "app:app"]', [("FS202", 1, 7)]),
        ("command: gunicorn --worker-class=gthread --threads=4 app:app", [("FS202", 1, 10)]),
        ("exec gunicorn -kgevent -t 0 app:app && echo done", [("FS203", 1, 6)]),
        ("python -m gunicorn --threads 32 app:app", []),  # sync with threads is gthread
        ("web: gunicorn -k gevent app:app", []),
        ("web: gunicorn -k $WORKER --threads $THREADS app:app", []),  # not known here
        ('web: gunicorn -k sync --threads "${THREADS:-25}" app:app', []),  # may be gthread
        ("web: gunicorn $GUNICORN_OPTIONS app:app", []),  # may carry any option
        ('exec gunicorn "$@"', []),
        ("RUN pip install gunicorn flask", []),
        ('RUN pip install "gunicorn[gevent]>=23"', []),
        ("# web: gunicorn app:app", []),
        ("The gunicorn docs say so.", []),
    ],
)
def test_command_lines(tmp_path: Path, text: str, expected: list[tuple[str, int, int]]) -> None:
    found = findings(tmp_path, {"Procfile": text})
    assert [(code, line, column) for code, _, line, column in found] == expected


def test_shell_continuations_and_dockerfile_forms(tmp_path: Path) -> None:
    files = {
        "deploy/web.service": "[Service]\nExecStart=/srv/venv/bin/gunicorn \\\n"
        "    --worker-class gthread \\\n    --threads 2 \\\n    app:app\n",
        "Dockerfile": 'FROM python\nENTRYPOINT ["gunicorn", "--worker-class", "gevent"]\n'
        'CMD ["--timeout", "0", "app:app"]\n',
        "images/Dockerfile.sync": "FROM python\nCMD gunicorn \\\n  --bind 0.0.0.0:80 app:app\n",
    }
    assert findings(tmp_path, files) == [
        ("FS203", "Dockerfile", 2, 14),  # ENTRYPOINT + CMD: one command line
        ("FS202", "deploy/web.service", 2, 25),
        ("FS201", "images/Dockerfile.sync", 2, 5),
    ]


def test_yaml_command_and_args_strings_and_lists(tmp_path: Path) -> None:
    compose = """services:
  web:
    command: ["gunicorn", "-k", "gthread", "--threads", "2", "app:app"]
  worker:
    entrypoint: gunicorn
    command: --timeout 0 -k gevent app:app
  docs:
    command: mkdocs serve
"""
    kubernetes = """spec:
  containers:
    - name: web
      command:
        - gunicorn
      args:
        - --worker-class=sync
        - app:app
"""
    assert findings(tmp_path, {"compose.yaml": compose, "k8s/web.yaml": kubernetes}) == [
        ("FS202", "compose.yaml", 3, 14),
        ("FS203", "compose.yaml", 5, 17),
        ("FS201", "k8s/web.yaml", 5, 9),
    ]


def test_the_command_line_overrides_the_environment_which_overrides_the_configuration(
    tmp_path: Path,
) -> None:
    files = {
        "gunicorn.conf.py": 'worker_class = "gthread"\nthreads = 2\ntimeout = 0\n',
        "Dockerfile": 'FROM python\nENV GUNICORN_CMD_ARGS="--threads 4 --timeout 30"\n'
        'CMD ["gunicorn", "--threads", "16", "app:app"]\n',
    }
    # threads: 2 (file) < 4 (environment) < 16 (command line); timeout: 0 < 30.
    assert findings(tmp_path, files) == []
    files["Dockerfile"] = 'FROM python\nENV GUNICORN_CMD_ARGS="--threads 4"\nCMD gunicorn app:app\n'
    assert findings(tmp_path, files) == [
        ("FS202", "Dockerfile", 2, 5),  # the environment's 4 threads
        ("FS203", "gunicorn.conf.py", 3, 1),  # the file's timeout, nothing overrides it
    ]


def test_an_environment_set_elsewhere_that_may_reach_the_command_is_not_known(
    tmp_path: Path,
) -> None:
    files = {
        "compose.yaml": "services:\n  web:\n    build: .\n    environment:\n"
        '      GUNICORN_CMD_ARGS: "--worker-class gevent"\n',
        "Dockerfile": "FROM python\nCMD gunicorn app:app\n",
        "Procfile": "web: gunicorn app:app\n",  # Heroku: compose's environment never reaches it
    }
    assert findings(tmp_path, files) == [("FS201", "Procfile", 1, 6)]


@pytest.mark.parametrize(
    "environment",
    [
        "env:\n        - name: GUNICORN_CMD_ARGS\n          value: --worker-class gevent\n",
        "envFrom: []\n      # GUNICORN_CMD_ARGS comes from the secret\n",
    ],
)
def test_an_environment_that_cannot_be_read_makes_the_command_unknown(
    tmp_path: Path, environment: str
) -> None:
    kubernetes = (
        "spec:\n  containers:\n    - name: web\n      command: [gunicorn, app:app]\n"
        f"      {environment}"
    )
    assert findings(tmp_path, {"k8s/web.yaml": kubernetes}) == []
    # Control: the same container without it defaults to the sync worker.
    plain = "spec:\n  containers:\n    - name: web\n      command: [gunicorn, app:app]\n"
    assert findings(tmp_path, {"k8s/web.yaml": plain}) == [("FS201", "k8s/web.yaml", 4, 16)]


def test_the_configuration_a_command_line_names_is_judged_with_it(tmp_path: Path) -> None:
    """pgadmin4's layout: the file only sets logging, the command line the worker."""
    files = {
        "pkg/docker/entrypoint.sh": "exec /venv/bin/gunicorn -w 1 --threads 25 "
        "-c gunicorn_config.py run:app\n",
        "pkg/docker/gunicorn_config.py": 'accesslog = "-"\nloglevel = "info"\n',
    }
    assert findings(tmp_path, files) == []
    # The same file judged on its own (no command line) would default to the sync worker.
    del files["pkg/docker/entrypoint.sh"]
    (tmp_path / "pkg/docker/entrypoint.sh").unlink()
    assert findings(tmp_path, files) == [("FS201", "pkg/docker/gunicorn_config.py", 1, 1)]


@pytest.mark.parametrize(
    ("reference", "where"),
    [
        ("web_gunicorn_config.py", "camera/web_gunicorn_config.py"),  # beside the script
        ("/app/settings/web.py", "settings/web.py"),  # the deployed path's end
        ("python:settings.web", "settings/web.py"),  # a module
        ("file:camera/web_gunicorn_config.py", "camera/web_gunicorn_config.py"),
    ],
)
def test_configuration_files_are_found_by_the_name_a_command_line_gives(
    tmp_path: Path, reference: str, where: str
) -> None:
    files = {
        "camera/start.sh": f"gunicorn -c {reference} web_app:app\n",
        where: 'worker_class = "gevent"\ntimeout = 0\n',
    }
    assert findings(tmp_path, files) == [("FS203", where, 2, 1)]


@pytest.mark.parametrize(
    "config",
    [
        'worker_class = "gevent"\nif DEBUG:\n    timeout = 0\n',  # conditional: not known
        'from defaults import *\nworker_class = "gevent"\ntimeout = 0\n',  # may set anything
    ],
)
def test_what_a_configuration_file_does_not_say_plainly_is_not_judged(
    tmp_path: Path, config: str
) -> None:
    files = {"Procfile": "web: gunicorn -c conf.py -k sync app:app", "conf.py": config}
    found = findings(tmp_path, files)
    assert found == ([] if "import *" in config else [("FS201", "Procfile", 1, 6)])


def test_a_configuration_the_command_line_names_but_the_project_lacks_is_unknown(
    tmp_path: Path,
) -> None:
    assert findings(tmp_path, {"Procfile": "web: gunicorn -c /etc/gunicorn.py app:app"}) == []


def test_a_default_configuration_elsewhere_may_be_the_one_loaded(tmp_path: Path) -> None:
    files = {
        "deploy/gunicorn.conf.py": 'worker_class = "gevent"\n',
        "Dockerfile": "FROM python\nCMD gunicorn app:app\n",  # its working directory: unknown
    }
    assert findings(tmp_path, files) == []


def test_a_custom_application_is_not_a_configuration_file(tmp_path: Path) -> None:
    source = (
        "from gunicorn.app.base import BaseApplication\n\n\n"
        "class StandaloneApplication(BaseApplication):\n    workers = 2\n"
    )
    assert findings(tmp_path, {"gunicorn_app.py": source}) == []


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
        ("deployment.yaml", True),
        (".env", True),
        ("README.md", False),
        ("gunicorn.conf.py", False),
    ],
)
def test_command_files(name: str, expected: bool) -> None:
    assert is_command_file(Path(name)) is expected


def test_only_invocations_are_commands() -> None:
    text = "# gunicorn app:app\nRUN pip install gunicorn\nRUN gunicorn --version\n"
    assert [c.words for c in commands(Path("Dockerfile"), text)] == [("--version",)]


def test_the_options_known_here_are_gunicorns() -> None:
    """The option and setting names the reader knows are gunicorn's own."""
    from gunicorn.config import KNOWN_SETTINGS

    valued = {flag for s in KNOWN_SETTINGS for flag in s.cli or () if s.action not in FLAG_ACTIONS}
    flags = {flag for s in KNOWN_SETTINGS for flag in s.cli or () if s.action in FLAG_ACTIONS}
    assert set(_OPTIONS) <= valued
    assert _VALUED - {"--limit-request-field-size"} <= valued
    assert _FLAGS - {"--help", "--version"} <= flags
    assert {s.name for s in KNOWN_SETTINGS} >= CONFIG_SETTINGS


FLAG_ACTIONS = ("store_true", "store_false", "store_const")
