"""Reading a generated project's answers file, the single record of what was generated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ScaffoldError

ANSWERS_FILE = ".copier-answers.yml"
# Questions only this template asks: an answers file without them belongs to another template.
OUR_QUESTIONS = frozenset({"project_name", "package_name", "endpoints"})


@dataclass(frozen=True)
class Endpoint:
    """One record of the ``endpoints`` answer."""

    name: str
    path: str
    style: str
    format: str
    session: bool
    source: str = "ticks"

    def to_record(self) -> dict[str, Any]:
        """The record as Copier stores it in the answers file."""
        return {
            "name": self.name,
            "path": self.path,
            "style": self.style,
            "format": self.format,
            "session": self.session,
            "source": self.source,
        }

    @classmethod
    def from_record(cls, record: object) -> Endpoint:
        """Build an endpoint from an answers-file record, refusing malformed ones."""
        if not isinstance(record, dict):
            raise ScaffoldError(f"{ANSWERS_FILE}: an endpoints entry is not a record: {record!r}")
        try:
            return cls(
                name=str(record["name"]),
                path=str(record["path"]),
                style=str(record["style"]),
                format=str(record["format"]),
                session=bool(record["session"]),
                # Recorded since channels came; older answers are ticks endpoints.
                source=str(record.get("source", "ticks")),
            )
        except KeyError as missing:
            raise ScaffoldError(
                f"{ANSWERS_FILE}: endpoint record {record!r} lacks the key {missing}"
            ) from None


@dataclass(frozen=True)
class Answers:
    """The recorded answers of one generated project."""

    project: Path
    raw: dict[str, Any]

    @property
    def src_path(self) -> str:
        """Where the project's template lives, exactly as recorded (may start with ``~``)."""
        return str(self.raw["_src_path"])

    @property
    def commit(self) -> str | None:
        """The template version the project was last rendered from (``git describe`` form)."""
        value = self.raw.get("_commit")
        return None if value is None else str(value)

    @property
    def package_name(self) -> str:
        """The project's import package."""
        return str(self.raw["package_name"])

    @property
    def endpoints(self) -> list[Endpoint]:
        """The endpoints in the order they were added."""
        records = self.raw.get("endpoints") or []
        if not isinstance(records, list):
            raise ScaffoldError(f"{ANSWERS_FILE}: 'endpoints' is not a list")
        return [Endpoint.from_record(record) for record in records]

    def require_commit(self) -> str:
        """The recorded template version, or a `ScaffoldError` explaining why updates fail."""
        if not self.commit:
            raise ScaffoldError(
                f"{ANSWERS_FILE} records no template version (_commit): the project was copied "
                "from a template that is not a git repository and cannot be re-rendered"
            )
        return self.commit


def load_answers(project: Path) -> Answers:
    """Read and check the answers file of ``project``.

    Raises `ScaffoldError` when there is no answers file or it was written by another template.
    """
    import yaml  # noqa: PLC0415  (keeps `--help` and `--version` from paying for it)

    path = project / ANSWERS_FILE
    if not path.is_file():
        raise ScaffoldError(
            f"{project} is not a flask-stream-scaffold project (no {ANSWERS_FILE}); "
            "run this inside a generated project or pass --project DIR"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0]
        raise ScaffoldError(f"{path.name} is not valid YAML: {first}") from None
    if not isinstance(raw, dict) or not raw.keys() >= OUR_QUESTIONS:
        raise ScaffoldError(
            f"{project / ANSWERS_FILE} was written by another template, "
            "not flask-stream-scaffold; nothing was changed"
        )
    if not raw.get("_src_path"):
        raise ScaffoldError(
            f"{ANSWERS_FILE} records no template source (_src_path); it cannot be re-rendered"
        )
    return Answers(project=project, raw=raw)
