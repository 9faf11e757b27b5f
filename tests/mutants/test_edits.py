"""The catalogue's edits: found by meaning, once, or not at all."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .catalogue import Mutant, at
from .edits import (
    AnchorLost,
    Code,
    Delete,
    DeleteLine,
    Directive,
    Insert,
    InsertLine,
    Replace,
    ReplaceLine,
    Undecorate,
    Unprotect,
)

SOURCE = textwrap.dedent(
    '''\
    import hmac


    def check(given: str, expected: str) -> bool:
        """Compare in constant time."""
        # The comparison itself:
        return hmac.compare_digest(
            given.encode(),  # what the client sent
            expected.encode(),
        )


    def stream():
        @decorate  # a comment on the decorator
        def generate():
            try:
                yield "a"
            finally:
                close("done")

        return generate
    '''
)


def test_a_pattern_matches_whatever_the_layout_comments_and_quotes() -> None:
    edited = Replace(
        Code("hmac.compare_digest(given.encode(), expected.encode())", "check"), "True"
    ).apply(SOURCE)
    assert "return True\n" in edited
    assert "# The comparison itself:" in edited
    edited = Replace(Code("close('done')"), "close('other')").apply(SOURCE)
    assert "close('other')" in edited


def test_dots_stand_for_any_expression_and_any_arguments() -> None:
    comparison = Code("hmac.compare_digest(...)", "check")
    edited = Replace(comparison, "{args[1]}.startswith({args[0]})").apply(SOURCE)
    assert "return expected.encode().startswith(given.encode())\n" in edited
    for pattern in ("hmac.compare_digest(given.encode(), ...)", "....compare_digest(...)"):
        assert "return True\n" in Replace(Code(pattern), "True").apply(SOURCE)


def test_a_pattern_must_match_exactly_once() -> None:
    with pytest.raises(AnchorLost, match="matches 0 places"):
        Replace(Code("hmac.compare_digest(...)", "stream"), "True").apply(SOURCE)
    with pytest.raises(AnchorLost, match="matches 2 places"):
        Replace(Code("....encode()"), "b''").apply(SOURCE)
    with pytest.raises(AnchorLost, match="defined 0 times"):
        Delete(Code("close(...)", "nowhere")).apply(SOURCE)


def test_a_lost_anchor_names_its_mutant_and_file(tmp_path: Path) -> None:
    (tmp_path / ".copier-answers.yml").write_text("package_name: live\n")
    (tmp_path / "src" / "live").mkdir(parents=True)
    (tmp_path / "src" / "live" / "check.py").write_text(SOURCE)
    moved = Replace(Code("hmac.compare_digest(...)", "stream"), "True")
    mutant = Mutant("token-moved", "defaults", "", (at("src/{package}/check.py", moved),))
    with pytest.raises(AnchorLost, match=r"^mutant token-moved: src/live/check.py: .* 0 places"):
        mutant.apply(tmp_path)


def test_a_scope_may_name_a_function_inside_another() -> None:
    edited = Delete(Code("close(...)", "stream.generate")).apply(SOURCE)
    assert "        finally:\n            pass\n" in edited


def test_statements_are_inserted_at_their_neighbours_indentation() -> None:
    anchor = Code("yield 'a'", "generate")
    before = Insert(anchor, "log('first')", before=True).apply(SOURCE)
    assert "            log('first')\n            yield \"a\"\n" in before
    after = Insert(anchor, "log('then')").apply(SOURCE)
    assert "            yield \"a\"\n            log('then')\n" in after


def test_a_decorator_is_removed_with_its_line() -> None:
    edited = Undecorate(Code("decorate", "stream.generate")).apply(SOURCE)
    assert "decorate" not in edited
    with pytest.raises(AnchorLost, match="not a decorator"):
        Undecorate(Code("close", "generate")).apply(SOURCE)


def test_unprotect_runs_the_clean_up_only_at_the_normal_end() -> None:
    edited = Unprotect(Code("close(...)", "generate")).apply(SOURCE)
    closed: list[str] = []
    namespace = {"decorate": lambda f: f, "close": closed.append}
    exec(compile(edited, "<edited>", "exec"), namespace)
    generator = namespace["stream"]()()  # type: ignore[operator]
    next(generator)
    generator.close()  # a client that leaves
    assert closed == []
    assert list(namespace["stream"]()()) == ["a"]  # type: ignore[operator]
    assert closed == ["done"]


CONFIG = textwrap.dedent(
    """\
    http {
        # proxy_buffering on;  (a comment, not a directive)
        proxy_buffering off;
        location / {
            proxy_pass http://app;
        }
        location /other {
            proxy_pass http://app;
        }
    }
    """
)


def test_directives_are_found_by_their_first_words_comments_ignored() -> None:
    at = Directive(("proxy_buffering",))
    assert "    proxy_buffering on;\n" in ReplaceLine(at, "proxy_buffering on;").apply(CONFIG)
    assert "proxy_buffering off" not in DeleteLine(at).apply(CONFIG)
    with pytest.raises(AnchorLost, match="on 2 lines"):
        DeleteLine(Directive(("proxy_pass",))).apply(CONFIG)
    edited = InsertLine(Directive(("proxy_pass",), 1), "proxy_buffering on;").apply(CONFIG)
    assert edited.endswith("proxy_pass http://app;\n        proxy_buffering on;\n    }\n}\n")
