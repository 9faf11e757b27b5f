"""The naming rules: one table of bad answers, refused alike by the CLI and by Copier, and
names at the edges of the rules, which render projects clean under their own linters.

The rules live in copier.yml alone. The bad answers go through the CLI (``new``) and through
Copier's own API (what ``copier copy --data`` runs), which must give the same verdict and the
same message; nothing is rendered for them, so the table is cheap.
"""

from __future__ import annotations

import ast
import html
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import markdown
import pytest
import yaml
from packaging.requirements import Requirement

from .conftest import ROOT, assert_user_error, invoke, run_tool

QUESTIONS = yaml.safe_load((ROOT / "copier.yml").read_text("utf-8"))
LIMITS: dict[str, int] = QUESTIONS["name_limits"]["default"]
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*\Z")


@pytest.fixture(scope="module")
def plain_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a plain directory: Copier renders it without cloning (fast)."""
    destination = tmp_path_factory.mktemp("plain") / "template"
    destination.mkdir()
    shutil.copy2(ROOT / "copier.yml", destination / "copier.yml")
    shutil.copytree(ROOT / "template", destination / "template")
    return destination


def endpoint(name: str = "events", path: str | None = None, **fields: object) -> dict[str, Any]:
    record = {"name": name, "path": path or "/" + name.replace("_", "-")}
    return {**record, "style": "decorator", "format": "sse", "session": False, **fields}


def copier_verdict(template: Path, destination: Path, data: dict[str, Any]) -> str:
    """Copier's message for ``data`` ("" when it accepts them), rendering nothing."""
    import copier

    try:
        copier.run_copy(
            str(template),
            destination,
            data=data,
            defaults=True,
            pretend=True,
            quiet=True,
            exclude=["*"],
        )
    except ValueError as error:
        return str(error)
    return ""


# (what is wrong, copier data, the same for `new`, a fragment of the one message)
BAD_ANSWERS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("project-dash", {"project_name": "-bad-"}, ["--name", "-bad-"], "not a valid distribution"),
    ("project-newline", {"project_name": "pz\n"}, ["--name", "pz\n"], "not a valid distribution"),
    ("project-long", {"project_name": "p" * 65}, ["--name", "p" * 65], "longer than 64"),
    ("package-case", {"package_name": "My_App"}, ["--package", "My_App"], "not a lowercase"),
    ("package-digit", {"package_name": "9lives"}, ["--package", "9lives"], "not a lowercase"),
    ("package-private", {"package_name": "_json"}, ["--package", "_json"], "not a lowercase"),
    ("package-newline", {"package_name": "pz\n"}, ["--package", "pz\n"], "not a lowercase"),
    ("package-long", {"package_name": "a" * 41}, ["--package", "a" * 41], "longer than 40"),
    ("package-keyword", {"package_name": "class"}, ["--package", "class"], "Python keyword"),
    ("package-stdlib", {"package_name": "json"}, ["--package", "json"], "standard-library"),
    ("package-tests", {"package_name": "tests"}, ["--package", "tests"], "project's tests"),
    ("package-flask", {"package_name": "flask"}, ["--package", "flask"], "depends on"),
    ("package-pytest", {"package_name": "pytest"}, ["--package", "pytest"], "depends on"),
    ("package-mypy", {"package_name": "mypy"}, ["--package", "mypy"], "depends on"),
    (
        "package-typing-ext",
        {"package_name": "typing_extensions"},
        ["--package", "typing_extensions"],
        "depends on",
    ),
    (
        "description-lines",
        {"description": "two\nlines"},
        ["--description", "two\nlines"],
        "one line",
    ),
    ("description-newline", {"description": "nl\n"}, ["--description", "nl\n"], "one line"),
    ("description-tab", {"description": "a\tb"}, ["--description", "a\tb"], "one line"),
    ("description-empty", {"description": " "}, ["--description", " "], "empty"),
    ("description-long", {"description": "d" * 81}, ["--description", "d" * 81], "longer than 80"),
    ("endpoint-case", {"endpoints": [endpoint("Bad")]}, ["--endpoint", "Bad"], "snake_case"),
    (
        "endpoint-newline",
        {"endpoints": [endpoint("nm\n", "/nm")]},
        ["--endpoint", "nm\n", "--path", "/nm"],
        "snake_case",
    ),
    ("endpoint-keyword", {"endpoints": [endpoint("lambda")]}, ["--endpoint", "lambda"], "keyword"),
    ("endpoint-demo", {"endpoints": [endpoint("demo")]}, ["--endpoint", "demo"], "reserved"),
    (
        "endpoint-long",
        {"endpoints": [endpoint("e" * 33)]},
        ["--endpoint", "e" * 33],
        "longer than 32",
    ),
    (
        "path-relative",
        {"endpoints": [endpoint(path="events")]},
        ["--path", "events"],
        'start with "/"',
    ),
    (
        "path-newline",
        {"endpoints": [endpoint(path="/nl\n")]},
        ["--path", "/nl\n"],
        "followed by letters",
    ),
    ("path-root", {"endpoints": [endpoint(path="/")]}, ["--path", "/"], 'not "/" alone'),
    ("path-double-slash", {"endpoints": [endpoint(path="//x")]}, ["--path", "//x"], 'no "//"'),
    ("path-dot", {"endpoints": [endpoint(path="/a/./b")]}, ["--path", "/a/./b"], '"." or ".."'),
    ("path-dot-dot", {"endpoints": [endpoint(path="/a/..")]}, ["--path", "/a/.."], '"." or ".."'),
    ("path-static", {"endpoints": [endpoint(path="/static")]}, ["--path", "/static"], "/static/"),
    (
        "path-under-static",
        {"endpoints": [endpoint(path="/static/demo.js")]},
        ["--path", "/static/demo.js"],
        "/static/",
    ),
    (
        "path-long",
        {"endpoints": [endpoint(path="/" + "p" * 32)]},
        ["--path", "/" + "p" * 32],
        "longer than 32",
    ),
]


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [row[1:] for row in BAD_ANSWERS],
    ids=[row[0] for row in BAD_ANSWERS],
)
def test_the_cli_and_copier_refuse_the_same_answers_alike(
    tmp_path: Path, plain_template: Path, data: dict[str, Any], options: list[str], message: str
) -> None:
    refused = copier_verdict(plain_template, tmp_path / "by-copier", data)
    assert message in refused
    assert not (tmp_path / "by-copier").exists()

    destination = tmp_path / "by-cli"
    result = invoke("new", destination, "-y", "--template", plain_template, *options)
    assert_user_error(result, message)
    # The very message of copier.yml's validator, on one line (line breaks shown escaped).
    validator_message = refused.partition("': ")[2]
    printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in validator_message)
    assert result.stderr.strip() == f"Error: {printable}"
    assert not destination.exists()


def test_a_bad_endpoint_is_refused_by_add_endpoint_as_by_copier(base_project: Path) -> None:
    before = sorted(path.name for path in base_project.rglob("*"))
    result = invoke("add-endpoint", "feed", "--path", "/static/feed", "--project", base_project)
    assert_user_error(result, 'endpoint path "/static/feed" is under /static/')
    assert sorted(path.name for path in base_project.rglob("*")) == before


# ------------------------------------------------------------ names at the edges
EDGE_DESCRIPTION = '1. say """hi""" \\N & <b>*x*</b> [a](b) `c` _d_ # ~e~ | "' + "\\"
EDGES: dict[str, dict[str, Any]] = {
    # Every name as long as the rules allow, in every style and format.
    "longest": {
        "project_name": "p" * LIMITS["project_name"],
        "package_name": "a" * LIMITS["package_name"],
        "description": ('"\\' * LIMITS["description"])[: LIMITS["description"]],
        "server": "gevent",
        "endpoints": [
            endpoint(
                letter * LIMITS["endpoint_name"],
                "/" + letter * (LIMITS["endpoint_path"] - 1),
                style=style,
                format=fmt,
                session=session,
            )
            for letter, style, fmt, session in (
                ("b", "decorator", "sse", True),
                ("c", "wrapper", "sse", False),
                ("d", "decorator", "ndjson", False),
                ("e", "wrapper", "text", True),
            )
        ]
        + [
            endpoint(
                letter * LIMITS["endpoint_name"],
                "/" + letter * (LIMITS["endpoint_path"] - 1),
                style=style,
                format=fmt,
                session=session,
                source="channel",
            )
            for letter, style, fmt, session in (
                ("f", "wrapper", "sse", True),
                ("g", "decorator", "ndjson", False),
            )
        ],
    },
    # The shortest names, a package that sorts after "tests", and a description with the
    # special characters of TOML, Python strings, Markdown and HTML.
    "shortest": {
        "project_name": "z",
        "package_name": "zz",
        "description": EDGE_DESCRIPTION,
        "endpoints": [endpoint("e", "/e")],
    },
    # Endpoints named like the template's own modules and like what the endpoints package
    # imported once: each must render a sound project (or be refused, above).
    "template-names": {
        "package_name": "web",
        "endpoints": [
            endpoint(name)
            for name in ("app", "sse", "streaming", "helpers", "conftest", "dataclass", "json")
        ],
    },
}


@pytest.fixture(scope="module")
def edge_project(
    tmp_path_factory: pytest.TempPathFactory, plain_template: Path
) -> Callable[[str], Path]:
    """The project of one edge case, rendered through Copier the first time it is asked for."""
    import copier

    rendered: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in rendered:
            destination = tmp_path_factory.mktemp("edge") / case
            copier.run_copy(
                str(plain_template), destination, data=EDGES[case], defaults=True, quiet=True
            )
            rendered[case] = destination
        return rendered[case]

    return get


@pytest.mark.parametrize("case", sorted(EDGES))
def test_names_at_the_edges_render_projects_clean_under_their_own_linters(
    edge_project: Callable[[str], Path], case: str
) -> None:
    project = edge_project(case)
    run_tool(project, "ruff", "check", "--no-cache", ".")
    run_tool(project, "ruff", "format", "--no-cache", "--check", ".")


def test_the_description_is_escaped_for_each_language(
    edge_project: Callable[[str], Path],
) -> None:
    case = "shortest"
    project = edge_project(case)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["description"] == EDGE_DESCRIPTION
    module = ast.parse((project / "src" / "zz" / "__init__.py").read_text("utf-8"))
    docstring = ast.get_docstring(module) or ""
    assert " ".join(docstring.split("\n\n", 1)[1].split()) == f"{EDGE_DESCRIPTION}."
    readme = (project / "README.md").read_text("utf-8").split("\n\n")[1]
    text = html.unescape(re.sub(r"<[^>]+>", "", markdown.markdown(readme)))
    assert text == f"{EDGE_DESCRIPTION}."


def test_endpoints_named_like_template_modules_give_a_sound_project(
    edge_project: Callable[[str], Path],
) -> None:
    case = "template-names"
    project = edge_project(case)
    names = [record["name"] for record in EDGES[case]["endpoints"]]
    # The template's own tests are all there, next to the endpoints' test module...
    tests = sorted(path.name for path in (project / "tests").glob("test_*.py"))
    template_tests = sorted(
        path.name.removesuffix(".jinja") for path in (ROOT / "template" / "tests").glob("test_*")
    )
    # ...with the test of the proxy config, rendered when there is one (nginx by default)...
    assert tests == sorted([*template_tests, "test_proxy.py"])
    # ...the app registers every endpoint, and every test module imports.
    code = (
        "from web import create_app\n"
        "app = create_app({'TESTING': True})\n"
        "print(' '.join(sorted(app.blueprints)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={"PYTHONPATH": "src"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # (and the probes'; the metrics route exists in debug mode only).
    assert proc.stdout.split() == sorted([*names, "demo", "health"])
    run_tool(project, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only")


# -------------------------------------------- reserved names, derived from the template
def test_reserved_endpoint_names_are_the_ones_the_template_uses(
    edge_project: Callable[[str], Path],
) -> None:
    case = "shortest"
    project = edge_project(case)
    taken: set[str] = set()
    # Modules beside an endpoint's own module.
    for per_endpoint in (ROOT / "template").rglob("*{% yield endpoint*"):
        for sibling in per_endpoint.parent.iterdir():
            if sibling != per_endpoint:
                taken.add(sibling.name.removesuffix(".jinja").removesuffix(".py"))
    # Lowercase names the endpoints package binds beside the endpoint modules.
    init = project / "src" / "zz" / "endpoints" / "__init__.py"
    for node in ast.walk(ast.parse(init.read_text("utf-8"))):
        if isinstance(node, ast.alias):
            taken.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            taken.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            taken.add(node.id)
    taken -= {record["name"] for record in EDGES[case]["endpoints"]}
    # Blueprint names the template registers besides the endpoints'.
    for module in (ROOT / "template" / "src").rglob("*.py*"):
        if "yield" not in module.name:
            taken.update(re.findall(r'Blueprint\("(\w+)"', module.read_text("utf-8")))
    reserved = set(QUESTIONS["reserved_endpoint_names"]["default"])
    assert {name for name in taken if IDENTIFIER.match(name)} <= reserved


def _modules_of(requirement: Requirement, owned: dict[str, set[str]], seen: set[str]) -> set[str]:
    """Top-level modules of an installed requirement and of everything it requires."""
    name = requirement.name.lower().replace("_", "-")
    if name in seen:
        return set()
    seen.add(name)
    modules = set(owned.get(name, ()))
    for text in importlib.metadata.distribution(name).requires or []:
        needed = Requirement(text)
        extras = requirement.extras or {""}
        if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
            modules |= _modules_of(needed, owned, seen)
    return modules


def test_package_names_of_the_projects_dependencies_are_refused(
    edge_project: Callable[[str], Path],
) -> None:
    case = "longest"  # the gevent project, whose requirements include the most
    project = edge_project(case)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["project"]
    requirements = [
        text
        for texts in (pyproject["dependencies"], *pyproject["optional-dependencies"].values())
        for text in texts
        # The dev extra names the project itself with its other extras, listed here too.
        if Requirement(text).name != pyproject["name"]
    ]
    owned: dict[str, set[str]] = {}
    for module, owners in importlib.metadata.packages_distributions().items():
        for owner in owners:
            owned.setdefault(owner.lower().replace("_", "-"), set()).add(module)
    seen: set[str] = set()
    modules = set().union(*(_modules_of(Requirement(t), owned, seen) for t in requirements))
    # What copier.yml refuses: the requirements it renders, by name, and what they bring.
    direct = {
        re.sub(r"[^A-Za-z0-9_.-].*", "", text).lower().replace("-", "_")
        for question in ("project_dependencies", "redis_dependencies", "dev_dependencies")
        for text in QUESTIONS[question]["default"]
    }
    refused = direct | set(QUESTIONS["indirect_dependency_modules"]["default"])
    missing = {module for module in modules if IDENTIFIER.match(module)} - refused
    assert not missing, f"add to indirect_dependency_modules in copier.yml: {sorted(missing)}"
