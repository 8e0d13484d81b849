"""A model's data source as a spec writes it, and opening it as a FileSource or an SqlSource."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Engine

from jobs.sources.base import FileFormat, Source
from jobs.sources.files import FileSource
from jobs.sources.objects import ObjectSource, credentials_in_url, url_scheme
from jobs.sources.sql import SqlSource
from jobs.sources.urls import ENV_VAR, expand_env, parse_url, resolve_sqlite


_PARTITION_FORMAT = re.compile(r"^(%[YmdH]|[0-9A-Za-z_.-])+$")


class PartitionSpec(BaseModel):
    """A hive-partitioned dataset: files in `<column>=<value>` folders, the value a UTC date-time written
    with `format` (strftime: %Y, %m, %d, %H and the characters - _ . between them)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    column: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    format: str = "%Y-%m-%d"

    @model_validator(mode="after")
    def _dated(self) -> PartitionSpec:
        if not _PARTITION_FORMAT.match(self.format) or "%Y" not in self.format:
            raise ValueError(f"partition format {self.format!r}: use strftime codes %Y, %m, %d, %H with - _ . "
                             "between them, %Y among them (like %Y-%m-%d)")
        return self


class SourceSpec(BaseModel):
    """Where a model's data lives: `{path: ...}` (file, directory, glob, or an object-storage URL such as
    s3://bucket/prefix, optionally `partition`ed) or `{url: ..., table|query: ...}`.

    `url` may hold `${ENV_VAR}` placeholders, expanded when the source is opened, so that a
    password never has to be written into a spec; an object-storage path takes no credentials at all.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    path: str | None = None
    format: FileFormat | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    partition: PartitionSpec | None = None

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
            if url_scheme(self.path) is not None:
                if (problem := credentials_in_url(self.path)) is not None:
                    raise ValueError(problem)
                if any(char in self.path for char in "*?["):
                    raise ValueError("an object-storage path takes no wildcards: name the object, or the "
                                     "prefix (folder) whose files are all read")
            elif self.partition is not None and any(char in self.path for char in "*?["):
                raise ValueError("a partitioned 'path' is the dataset's folder, without wildcards")
            return self
        for key in ("format", "partition"):
            if getattr(self, key) is not None:
                raise ValueError(f"'{key}' only applies to a file 'path'")
        if (self.table is None) == (self.query is None):
            raise ValueError("a database 'url' needs either 'table' or 'query', not both or neither")
        if not ENV_VAR.search(self.url or ""):
            parse_url(self.url or "")
        return self


def open_source(spec: SourceSpec, base_dir: Path, *, engine: Engine | None = None) -> Source:
    """A Source for `spec`; relative file paths and SQLite files resolve against `base_dir`.

    Pass `engine` to reuse an existing SQLAlchemy engine instead of one built from `spec.url`.
    """
    if spec.path is not None and (url_scheme(spec.path) is not None or spec.partition is not None):
        location = spec.path if url_scheme(spec.path) else str(_resolve(Path(spec.path.removeprefix("file://"))
                                                                         .expanduser(), base_dir))
        partition = (spec.partition.column, spec.partition.format) if spec.partition else None
        return ObjectSource(location, file_format=spec.format, partition=partition)
    if spec.path is not None:
        return FileSource(_resolve(Path(spec.path.removeprefix("file://")).expanduser(), base_dir), spec.format)
    url = resolve_sqlite(parse_url(expand_env(spec.url or "")), base_dir)
    return SqlSource(url, table=spec.table, query=spec.query, engine=engine)


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else Path(base_dir) / path
