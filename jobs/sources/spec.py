"""A model's data source as a spec writes it, and opening it as a FileSource or an SqlSource."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy.engine import Engine

from jobs.sources.base import FileFormat, Source
from jobs.sources.files import FileSource
from jobs.sources.sql import SqlSource
from jobs.sources.urls import ENV_VAR, expand_env, parse_url, resolve_sqlite


class SourceSpec(BaseModel):
    """Where a model's data lives: `{path: ...}` (file, directory or glob) or `{url: ..., table|query: ...}`.

    `url` may hold `${ENV_VAR}` placeholders, expanded when the source is opened, so that a
    password never has to be written into a spec.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    path: str | None = None
    format: FileFormat | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either 'path' (a file) or 'url' (a database), not both or neither")
        if self.path is not None:
            if not self.path:
                raise ValueError("'path' is empty")
            for key in ("table", "query"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' only applies to a database 'url', not to a file 'path'")
            return self
        if self.format is not None:
            raise ValueError("'format' only applies to a file 'path'")
        if (self.table is None) == (self.query is None):
            raise ValueError("a database 'url' needs either 'table' or 'query', not both or neither")
        if not ENV_VAR.search(self.url or ""):
            parse_url(self.url or "")
        return self


def open_source(spec: SourceSpec, base_dir: Path, *, engine: Engine | None = None) -> Source:
    """A Source for `spec`; relative file paths and SQLite files resolve against `base_dir`.

    Pass `engine` to reuse an existing SQLAlchemy engine instead of one built from `spec.url`.
    """
    if spec.path is not None:
        return FileSource(_resolve(Path(spec.path).expanduser(), base_dir), spec.format)
    url = resolve_sqlite(parse_url(expand_env(spec.url or "")), base_dir)
    return SqlSource(url, table=spec.table, query=spec.query, engine=engine)


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else Path(base_dir) / path
