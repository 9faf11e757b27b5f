"""Answer migrations, run by Copier before an update renders with a project's old answers.

``copier.yml`` calls this file by path (``_migrations``), with Copier's own Python, from the
*new* template version, so it uses only the standard library and never imports the rest of
``scaffold_cli``. Every migration is idempotent: running it twice, or on answers that never
needed it, changes nothing.

Usage: ``python _migrations.py ANSWERS_FILE``
"""

from __future__ import annotations

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


MIGRATIONS = (migrate_server_labels, migrate_nginx_to_proxy)


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
