"""Answers given on the command line: ``--data KEY=VALUE`` and ``--data-file FILE``.

As with Copier's own ``--data`` and ``--data-file``, values are YAML (``nginx=false`` is a
boolean, ``endpoints=[{name: a}]`` a list); ``--data`` wins over the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._errors import ScaffoldError

_TRUE = frozenset({"true", "yes", "on", "y", "1"})
_FALSE = frozenset({"false", "no", "off", "n", "0"})


def split_assignment(item: str) -> tuple[str, str]:
    """``KEY=VALUE`` as ``(KEY, VALUE)``; a missing ``=`` is a `ScaffoldError`."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ScaffoldError(f"{item!r} is not KEY=VALUE (for example server=gevent)")
    return key.strip(), value


def parse_yaml(key: str, text: str) -> Any:  # noqa: ANN401  (any YAML value)
    """The YAML value of ``text``, given for the answer ``key``."""
    import yaml  # noqa: PLC0415

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise ScaffoldError(f"{key}={text!r} is not a valid YAML value") from None


def parse_bool(key: str, value: object) -> bool:
    """A yes/no answer from its YAML or typed form."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ScaffoldError(f"{key} must be true or false, not {value!r}")


def load_data(data_file: Path | None, assignments: Iterable[str]) -> dict[str, Any]:
    """The answers of ``--data-file`` updated with each ``--data KEY=VALUE``."""
    import yaml  # noqa: PLC0415

    data: dict[str, Any] = {}
    if data_file is not None:
        try:
            loaded = yaml.safe_load(data_file.read_text(encoding="utf-8"))
        except OSError as error:
            raise ScaffoldError(f"cannot read {data_file}: {error.strerror or error}") from None
        except yaml.YAMLError as error:
            first = str(error).splitlines()[0]
            raise ScaffoldError(f"{data_file} is not valid YAML: {first}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ScaffoldError(f"{data_file} must hold a mapping of answers (KEY: VALUE)")
        data.update({str(key): value for key, value in (loaded or {}).items()})
    for item in assignments:
        key, text = split_assignment(item)
        data[key] = parse_yaml(key, text)
    private = sorted(key for key in data if key.startswith("_"))
    if private:
        raise ScaffoldError(f"{', '.join(private)}: Copier's own settings cannot be given as data")
    return data
