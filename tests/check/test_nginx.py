"""The nginx reader: tokens, blocks, includes, inheritance and location choice as nginx does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scaffold_cli.check import check_paths
from scaffold_cli.check._nginx import match_location, parse, seconds, servers
from scaffold_cli.check._sources import ConfigError

from .test_rules import CORPUS

CONF = r"""
# a comment { with braces ; }
http {
    proxy_read_timeout 90s;
    server {
        listen 80;
        add_header X-Note "semi; colon {brace}" always;
        set $x "${host}\"q";
        location / { proxy_pass http://app; }
        location /api/ { proxy_pass http://app; proxy_buffering off; }
        location ^~ /static/ { root /srv; }
        location ~* \.(png|jpg)$ { expires 1d; }
        location ~ ^/api/stream/ { proxy_pass http://app; }
        location = /api/ { return 204; }
        location /nested/ {
            proxy_read_timeout 5s;
            location /nested/deep/ { proxy_pass http://app; }
        }
        include parts/*.conf;
    }
}
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "b.conf").write_text("location /b/ { proxy_pass http://b; }\n")
    (tmp_path / "parts" / "a.conf").write_text("location /a/ { proxy_pass http://a; }\n")
    path = tmp_path / "nginx.conf"
    path.write_text(CONF)
    return path


def chosen(conf: Path, uri: str) -> str | None:
    (chain,) = servers(parse(conf))
    location = match_location(chain, uri)
    return None if location is None else location.label


def test_quotes_comments_and_variables_are_read_as_nginx_reads_them(conf: Path) -> None:
    (chain,) = servers(parse(conf))
    server = {d.name: d for d in chain[0]}
    assert server["add_header"].args == ["X-Note", "semi; colon {brace}", "always"]
    assert server["set"].args == ["$x", '${host}"q']
    assert (server["listen"].line, server["listen"].column) == (6, 9)


@pytest.mark.parametrize(
    ("uri", "label"),
    [
        ("/api/", "location = /api/"),  # exact match first
        ("/api/stream/1", "location ~ ^/api/stream/"),  # a regex beats a prefix
        ("/api/other", "location /api/"),  # the longest prefix when no regex matches
        ("/static/a.png", "location ^~ /static/"),  # ^~ stops the regex search
        ("/img/A.PNG", "location ~* \\.(png|jpg)$"),  # ~* ignores case
        ("/nested/deep/x", "location /nested/deep/"),  # nested locations
        ("/a/1", "location /a/"),  # from an included file
        ("/b/", "location /b/"),
        ("/", "location /"),
    ],
)
def test_location_choice_follows_nginx(conf: Path, uri: str, label: str) -> None:
    assert chosen(conf, uri) == label


def test_settings_are_inherited_from_the_innermost_level(conf: Path) -> None:
    (chain,) = servers(parse(conf))
    deep = match_location(chain, "/nested/deep/x")
    api = match_location(chain, "/api/other")
    assert deep is not None and api is not None
    timeout = deep.setting("proxy_read_timeout")
    assert timeout is not None and timeout.args == ["5s"]
    inherited = api.setting("proxy_read_timeout")
    assert inherited is not None and inherited.args == ["90s"]
    assert deep.own("proxy_buffering") is None


def test_includes_of_the_main_file_are_read_in_glob_order(conf: Path) -> None:
    (chain,) = servers(parse(conf))
    included = [d for d in chain[0] if d.name == "location" and d.path != conf]
    assert [(d.path.name, d.args) for d in included] == [("a.conf", ["/a/"]), ("b.conf", ["/b/"])]


def test_an_include_that_matches_nothing_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_text("http { include mime.types; server { location / { proxy_pass http://a; } } }")
    (chain,) = servers(parse(path))
    assert chosen(path, "/x") == "location /"
    assert [d.name for d in chain[0]] == ["location"]


def test_an_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf;\n")
    (tmp_path / "b.conf").write_text("include a.conf;\n")
    with pytest.raises(ConfigError, match="nested more than"):
        parse(tmp_path / "a.conf")


@pytest.mark.parametrize(
    ("text", "value"),
    [("60", 60.0), ("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("x", None)],
)
def test_nginx_times(text: str, value: float | None) -> None:
    assert seconds(text) == value


LAYOUT = CORPUS / "FS301" / "good"


def dify_like(tmp_path: Path) -> Path:
    """A copy of the corpus project whose nginx ships as envsubst templates: nginx.conf and
    proxy.conf side by side, the site in conf.d/ including proxy.conf."""
    return Path(shutil.copytree(LAYOUT, tmp_path / "project"))


def fs3(project: Path) -> list[tuple[str, str, int]]:
    found = check_paths([project], select=["FS3", "FS001"])
    return [(f.code, f.path.relative_to(project).as_posix(), f.line) for f in found]


def test_a_relative_include_is_read_beside_the_main_file_not_the_including_one(
    tmp_path: Path,
) -> None:
    project = dify_like(tmp_path)
    assert fs3(project) == []
    # A proxy.conf beside the including file: nginx reads it into http {} through conf.d/*.conf
    # (where the location's own include overrides it), never for `include proxy.conf`.
    decoy = project / "docker/nginx/conf.d/proxy.conf"
    decoy.write_text("proxy_buffering on;\n")
    assert fs3(project) == []
    decoy.unlink()
    # Without the file nginx does read, the location's buffering is not known: no finding.
    (project / "docker/nginx/proxy.conf.template").unlink()
    assert fs3(project) == []
    # Control: the same location with its include removed is reported.
    site = project / "docker/nginx/conf.d/default.conf.template"
    site.write_text(site.read_text().replace("include proxy.conf;", ""))
    assert fs3(project) == [("FS301", "docker/nginx/conf.d/default.conf.template", 5)]


def test_an_include_that_cannot_be_read_makes_the_location_unknown(tmp_path: Path) -> None:
    shutil.copy(LAYOUT / "app.py", tmp_path / "app.py")
    site = "server {\n  location /plain {\n    proxy_pass http://a;\n    include %s;\n  }\n}\n"
    (tmp_path / "site.conf").write_text(site % "snippets/stream.conf")
    assert fs3(tmp_path) == []
    (tmp_path / "site.conf").write_text(site % "/etc/nginx/proxy_params")  # nginx ships it
    assert fs3(tmp_path) == [("FS301", "site.conf", 2)]


def test_placeholders_are_unknown_values_and_unknown_directives(tmp_path: Path) -> None:
    shutil.copy(LAYOUT / "app.py", tmp_path / "app.py")
    site = (
        "server {\n  listen ${NGINX_PORT};\n%s"
        "  location /plain {\n    proxy_pass http://a;\n%s  }\n}\n"
    )
    cases = [
        ("", "    proxy_buffering ${NGINX_BUFFERING};\n", []),
        ("  ${HTTPS_CONFIG}\n", "", []),  # may hold any location: which one is chosen?
        ("", "    proxy_buffering on;\n", [("FS301", "default.conf.template", 5)]),
    ]
    for server, location, expected in cases:
        (tmp_path / "default.conf.template").write_text(site % (server, location))
        assert fs3(tmp_path) == expected, (server, location)
