"""Answer migrations, run by Copier before an update renders with a project's old answers.

``copier.yml`` calls this file by path (``_migrations``), with Copier's own Python, from the
*new* template version, so it uses only the standard library and never imports the rest of
``scaffold_cli``. Every migration is idempotent: running it twice, or on answers that never
needed it, changes nothing.

Usage: ``python _migrations.py ANSWERS_FILE``
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

# Before 0.1.0 the ``server`` choices were written label-first, so Copier recorded the label
# ("gevent (thousands of streams per worker)") as the answer. Without this migration the new
# choices reject that value and Copier silently falls back to the default worker, gthread.
_SERVER_LINE = re.compile(
    r"^(?P<key>server:[ \t]*)(?P<quote>['\"]?)(?P<value>(?P<worker>gthread|gevent)\b[^'\"\n]+)"
    r"(?P=quote)[ \t]*$",
    re.MULTILINE,
)


def migrate_server_labels(text: str) -> str:
    """Turn a recorded ``server`` label back into the worker class it names."""
    return _SERVER_LINE.sub(lambda match: f"{match['key']}{match['worker']}", text)


# Up to 0.1.0 the proxy was the bool ``nginx``; ``proxy`` (nginx, caddy, apache or none)
# replaced it. Without this migration Copier would drop the old answer and fall back to the
# default, adding an nginx config to a project that had declined one.
_NGINX_LINE = re.compile(r"^nginx:[ \t]*(?P<value>true|false)[ \t]*$", re.MULTILINE | re.IGNORECASE)


def migrate_nginx_to_proxy(text: str) -> str:
    """Turn a recorded ``nginx: true|false`` into ``proxy: nginx|none``, unless already set."""
    if re.search(r"^proxy:", text, re.MULTILINE):
        return text
    return _NGINX_LINE.sub(
        lambda match: "proxy: " + ("nginx" if match["value"].lower() == "true" else "none"), text
    )


# Endpoint records gained a ``source`` (ticks or channel) with channels; every record written
# before that is a ticks endpoint. A record is a "- " line and the indented lines under it;
# the key goes right after its ``session:`` line, with the same indentation.
_RECORD = re.compile(r"^(?P<dash>[ \t]*-[ \t]+)(?=\S)", re.MULTILINE)
_SESSION_LINE = re.compile(r"^(?P<indent>[ \t]*(?:-[ \t]+)?)session:[^\n]*\n", re.MULTILINE)


def migrate_endpoint_source(text: str) -> str:
    """Add ``source: ticks`` to every ``endpoints`` record that lacks a source."""
    start = re.search(r"^endpoints:[ \t]*\n", text, re.MULTILINE)
    if start is None:
        return text
    # The block ends at the next top-level key (records may start at column 0 with "- ").
    end = re.search(r"^[^\s-]", text[start.end() :], re.MULTILINE)
    stop = start.end() + (end.start() if end else len(text) - start.end())
    block = text[start.end() : stop]
    records = [m.start() for m in _RECORD.finditer(block)] + [len(block)]
    out = [block[: records[0]]]
    for begin, finish in itertools.pairwise(records):
        record = block[begin:finish]
        session = _SESSION_LINE.search(record)
        if session is not None and not re.search(r"^[ \t]*(?:-[ \t]+)?source:", record, re.M):
            indent = " " * len(session["indent"].expandtabs())
            record = f"{record[: session.end()]}{indent}source: ticks\n{record[session.end() :]}"
        out.append(record)
    return text[: start.end()] + "".join(out) + text[stop:]


MIGRATIONS = (migrate_server_labels, migrate_nginx_to_proxy, migrate_endpoint_source)


def migrate(text: str) -> str:
    """Apply every migration, in order, to the text of an answers file."""
    for migration in MIGRATIONS:
        text = migration(text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite the answers file named on the command line in place (only if it changes)."""
    if len(argv) != 1:
        print("usage: _migrations.py ANSWERS_FILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    text = path.read_text(encoding="utf-8")
    migrated = migrate(text)
    if migrated != text:
        path.write_text(migrated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
