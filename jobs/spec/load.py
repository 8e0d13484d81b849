"""Project specs: the YAML file that puts a project, its people and its models under Flywheel.

`load_spec()` refuses a bad file as a whole and reports every problem found, each with the line of
the YAML node it concerns: syntax, shape (pydantic), cross references (people, keys) and the columns
of each model's reference data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from jobs.spec.checks import (
    _check_artifact_roots,
    _check_columns,
    _check_references,
    _Parts,
)
from jobs.spec.issues import (
    LoadedLibrary,
    LoadedSpec,
    Loc,
    SpecError,
    _add_validation_error,
    _Document,
    _show,
)
from jobs.spec.library import Library, is_library, merged, resolve, validate_library
from jobs.spec.model import LibrarySpec, ProjectSpec
from jobs.spec.reach import check_reach


def load_spec(path: str | Path, *, open_production: bool = False, library: Library | None = None) -> LoadedSpec:
    """Load and validate one spec file, or raise SpecError listing every problem. `open_production` (apply)
    also opens each model's production data read-only: its file or table, columns and timestamp. `library`:
    the registry's blueprint library, for a spec that names a blueprint or leaves it to its risk tier."""
    document = _load(Path(path), str(path), open_production)
    if isinstance(document.loaded, LoadedSpec):
        resolve(document, document.loaded, library or {})
    if document.issues or not isinstance(document.loaded, LoadedSpec):
        if not document.issues:
            document.add((), "this is a blueprint library, not a project spec", line=1)
        raise SpecError(document.issues)
    return document.loaded


@dataclass(frozen=True)
class Loaded:
    """What one `flywheel apply` brings: blueprint libraries (applied first) and project specs."""

    libraries: list[LoadedLibrary]
    projects: list[LoadedSpec]


def load_documents(paths: Iterable[str | Path], *, open_production: bool = False,
                   library: Library | Callable[[], Library] | None = None) -> Loaded:
    """Load library files and project specs in any order; a project's blueprint is chosen from the registry's
    `library` with the library files given here on top. Any problem in any file refuses them all."""
    documents = [_load(Path(path), str(path), open_production) for path in paths]
    libraries = [d.loaded for d in documents if isinstance(d.loaded, LoadedLibrary)]
    # A callable library is read only when a spec needs it (one without an inline blueprint).
    needed = any(isinstance(d.loaded, LoadedSpec) and d.loaded.spec.blueprint is None for d in documents)
    stored = (library() if callable(library) else library or {}) if needed else {}
    blueprints = merged(stored, libraries)
    # A library file with problems of its own can't choose blueprints: its problems are the ones to fix first.
    broken = any(d.shape is LibrarySpec and d.issues for d in documents)
    owners: dict[str, str] = {}
    for document in documents:
        if not isinstance(document.loaded, LoadedSpec):
            continue
        key = document.loaded.spec.project.key
        if key in owners:
            document.add(("project", "key"), f"project key '{key}' is also used by {owners[key]}")
        owners.setdefault(key, document.label)
        if not broken:
            resolve(document, document.loaded, blueprints)
    issues = [issue for document in documents for issue in document.issues]
    if issues:
        raise SpecError(issues)
    return Loaded(libraries, [d.loaded for d in documents if isinstance(d.loaded, LoadedSpec)])


def load_specs(paths: Iterable[str | Path], *, open_production: bool = False,
               library: Library | None = None) -> list[LoadedSpec]:
    """Load several project spec files (library files among them choose their blueprints)."""
    return load_documents(paths, open_production=open_production, library=library).projects


def _load(path: Path, label: str, open_production: bool = False) -> _Document:
    document = _Document(label)
    text = _read_text(path, document)
    if text is not None:
        data = _parse_yaml(text, document)
        if data is not None:
            _validate(data, path, document, open_production)
    document.issues.sort(key=lambda issue: issue.line)
    return document


def _read_text(path: Path, document: _Document) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        document.add((), "file not found", line=1)
        return None
    except IsADirectoryError:
        document.add((), "is a folder, not a spec file", line=1)
        return None
    except OSError as exc:
        document.add((), f"cannot read the file: {exc.strerror or exc}", line=1)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        document.add((), "the file is not UTF-8 text", line=raw[: exc.start].count(b"\n") + 1)
        return None


def _parse_yaml(text: str, document: _Document) -> dict[str, Any] | None:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document.root = node
        if node is None:
            document.add((), "the file is empty; expected project, people, channels, blueprint and models",
                         line=1)
            return None
        _check_duplicate_keys(node, document)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        if "block" in problem:
            problem += " (check the indentation)"
        document.add((), f"invalid YAML: {problem}", line=mark.line + 1 if mark else 1)
        return None
    except yaml.YAMLError as exc:
        document.add((), f"invalid YAML: {exc}", line=1)
        return None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        document.add((), f"expected a mapping (project:, people:, ...) at the top level, got {_show(data)}")
        return None
    return data


def _check_duplicate_keys(root: yaml.Node, document: _Document) -> None:
    seen_nodes: set[int] = set()  # aliases share nodes; visiting each once defuses alias bombs
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    line = key.start_mark.line + 1
                    if key.value in first:
                        document.add(loc + (key.value,), f"duplicate key '{key.value}' (first at line "
                                     f"{first[key.value]})", line=line)
                    first.setdefault(key.value, line)
                    stack.append((value, loc + (key.value,)))
                else:
                    stack.append((value, loc))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, loc + (index,)) for index, item in enumerate(node.value))


def _validate(data: dict[str, Any], path: Path, document: _Document, open_production: bool) -> None:
    if is_library(data):
        validate_library(data, path, document)
        return
    base_dir = path.resolve().parent
    spec: ProjectSpec | None = None
    try:
        spec = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            _add_validation_error(document, error)
    parts = _Parts.of(spec) if spec is not None else _Parts.salvage(data)
    _check_references(document, parts)
    _check_columns(document, parts, base_dir)
    _check_artifact_roots(document, parts, base_dir)
    check_reach(document, data, parts.models, parts.exact, base_dir, open_production=open_production)
    if spec is not None and not document.issues:
        document.loaded = LoadedSpec(spec=spec, path=path.resolve(), base_dir=base_dir)


