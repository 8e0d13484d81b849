"""Problems found in a spec file, each placed on the line of the YAML node it concerns."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from jobs.spec.model import BlueprintSpec, LibrarySpec, Loc, ProjectSpec


@dataclass(frozen=True)
class SpecIssue:
    file: str
    line: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f" {self.location}" if self.location else ""
        return f"{self.file}:{self.line}{where}: {self.message}"


class SpecError(Exception):
    """A spec file (or several) was refused; `issues` lists every problem, one per line in str()."""

    def __init__(self, issues: Iterable[SpecIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class LoadedSpec:
    spec: ProjectSpec
    path: Path
    base_dir: Path  # relative data paths and SQLite files resolve against this folder
    # The blueprint in force: the spec's inline one, or the library's it names or its risk tier chose.
    resolved: BlueprintSpec | None = None
    library: str | None = None  # the library blueprint's name; None when inline
    by_tier: bool = False  # chosen by the project's risk tier (the spec names none)

    @property
    def blueprint(self) -> BlueprintSpec:
        chosen = self.resolved or self.spec.blueprint
        if chosen is None:
            raise ValueError(f"{self.path.name}: its blueprint was not resolved against the library")
        return chosen


@dataclass(frozen=True)
class LoadedLibrary:
    spec: LibrarySpec
    path: Path





@dataclass
class _Document:
    label: str
    root: yaml.Node | None = None
    issues: list[SpecIssue] = field(default_factory=list)
    loaded: LoadedSpec | LoadedLibrary | None = None
    shape: Any = ProjectSpec  # what the file is read as: a project spec, or a blueprint library

    def add(self, loc: Loc, message: str, *, at: Loc | None = None, line: int | None = None) -> None:
        number = line if line is not None else _line_of(self.root, loc if at is None else at)
        self.issues.append(SpecIssue(self.label, number, _format_loc(loc), message))



# ---------------------------------------------------------------- pydantic errors -> issues


def _add_validation_error(document: _Document, error: Any) -> None:
    loc: Loc = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        document.add(loc[:-1], f"missing required key '{loc[-1]}'")
    elif kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1], document.shape)
        document.add(loc[:-1], f"unknown key '{loc[-1]}'{_suggest(str(loc[-1]), allowed, list_all=True)}", at=loc)
    else:
        document.add(loc, _message(kind, value, ctx, error["msg"]))


_EXPECTED = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}


def _message(kind: str, value: object, ctx: dict[str, Any], fallback: str) -> str:
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _suggest(value, options) if isinstance(value, str) else ""
        return f"expected one of {', '.join(options)}, got {_show(value)}{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {words} {bound}, got {_show(value)}"
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"expected at least {count} item{'s' if count != 1 else ''}"
    if kind == "string_too_short":
        return "must not be empty"
    return fallback


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(name: str, options: Sequence[str], *, list_all: bool = False) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    if not close and name:
        close = [option for option in options if option.startswith(name)][:2]
        close = close if len(close) == 1 else []
    if close:
        return f" (did you mean '{close[0]}'?)"
    if list_all and options:
        return f" (expected one of {', '.join(options)})"
    return ""


def _fields_at(loc: Loc, shape: Any = ProjectSpec) -> list[str]:
    """The keys allowed at `loc`, found by following the annotations from `shape` (ProjectSpec)."""
    current: Any = shape
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            if part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    return [name for name, info in current.model_fields.items() if not info.exclude] \
        if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            annotation = members[0]
        else:
            return annotation


def _line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the node at `loc`, or of the nearest parent that exists."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            entry = _entry(node, str(part))
            if entry is None:
                break
            key, node = entry
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _entry(node: yaml.MappingNode, name: str, depth: int = 0) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in reversed(node.value):  # the last of duplicate keys is the one that counts
        if isinstance(key, yaml.ScalarNode) and key.value == name and key.value != "<<":
            return key, value
    if depth > 10:
        return None
    for key, value in node.value:  # merge keys: `<<: *defaults`
        if isinstance(key, yaml.ScalarNode) and key.value == "<<":
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in merged:
                if isinstance(source, yaml.MappingNode) and (found := _entry(source, name, depth + 1)):
                    return found
    return None


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


