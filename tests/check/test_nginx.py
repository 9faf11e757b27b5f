"""The nginx reader: tokens, blocks, includes, inheritance and location choice as nginx does."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffold_cli.check._nginx import NginxError, match_location, parse, seconds, servers

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


def test_includes_are_relative_to_the_including_file_in_glob_order(conf: Path) -> None:
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
    with pytest.raises(NginxError, match="nested more than"):
        parse(tmp_path / "a.conf")


@pytest.mark.parametrize(
    ("text", "value"),
    [("60", 60.0), ("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("x", None)],
)
def test_nginx_times(text: str, value: float | None) -> None:
    assert seconds(text) == value
