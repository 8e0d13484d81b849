"""Parquet and CSV sources (pyarrow datasets): one file, a folder, or a glob. The opened dataset of a file
set (its footer or header) is cached per process and reopened whenever a file's size or mtime changes."""

from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds

from jobs.sources.base import ColumnKind, FileFormat, Source, SourceError
from jobs.sources.frames import first_line, naive_utc, normalise

_SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".csv": "csv", ".csv.gz": "csv", ".csv.bz2": "csv", ".csv.zst": "csv",
}
_DATASETS_KEPT = 64  # opened file sets; a worker checking many models reopens each one every cycle otherwise


class FileSource(Source):
    """Parquet or CSV: one file, a directory, or a glob such as `data/2024-*.parquet`."""

    def __init__(self, path: Path, file_format: FileFormat | None = None) -> None:
        self._path = path
        self._format = file_format

    def describe(self) -> str:
        return str(self._path)

    def schema(self) -> dict[str, ColumnKind]:
        return {field.name: arrow_kind(field.type) for field in self._dataset().schema}

    def fingerprint(self) -> Hashable:
        return _files_fingerprint(self._files()), self._format

    def read(self, columns: Sequence[str], *, time_column: str | None = None,
             start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        dataset = self._dataset()
        wanted, kinds = self._checked(columns, time_column, start, end)
        condition = None
        if time_column is not None:
            field_type = dataset.schema.field(time_column).type
            for bound, compare in ((start, "ge"), (end, "lt")):
                if bound is None:
                    continue
                term = arrow_time_bound(time_column, field_type, bound, compare)
                condition = term if condition is None else condition & term
        try:
            table = dataset.to_table(columns=wanted, filter=condition)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {self.describe()}: {first_line(exc)}") from exc
        return normalise(table.to_pandas(), {name: kinds[name] for name in wanted}, self.describe())

    def _files(self) -> list[str]:
        text = str(self._path)
        if any(char in text for char in "*?["):
            files = [f for f in sorted(glob.glob(text, recursive=True)) if os.path.isfile(f)]
            if not files:
                raise SourceError(f"no file matches {text}")
            return files
        if self._path.is_dir():
            files = [str(p) for p in sorted(self._path.rglob("*"))
                     if p.is_file() and suffix_format(p.name) is not None]
            if not files:
                raise SourceError(f"no .parquet or .csv file in the folder {text}")
            return files
        if not self._path.exists():
            raise SourceError(f"file not found: {text}")
        return [text]

    def _dataset(self) -> ds.Dataset:
        files = self._files()
        key = (_files_fingerprint(files), self._format)
        with _datasets_lock:
            if (dataset := _datasets.get(key)) is not None:
                _datasets.move_to_end(key)
                return dataset
        dataset = self._open(files)
        with _datasets_lock:
            _datasets[key] = dataset
            while len(_datasets) > _DATASETS_KEPT:
                _datasets.popitem(last=False)
        return dataset

    def _open(self, files: list[str]) -> ds.Dataset:
        file_format = self._format or suffix_format(files[0])
        if file_format is None:
            raise SourceError(
                f"cannot tell the format of {self.describe()}: name files .parquet or .csv, "
                "or set 'format'")
        try:
            return ds.dataset(files, format=dataset_format(file_format))
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot read {self.describe()} as {file_format}: {first_line(exc)}") from exc


_datasets: OrderedDict[Hashable, ds.Dataset] = OrderedDict()
_datasets_lock = threading.Lock()


def _files_fingerprint(files: list[str]) -> tuple:
    """Each file's name, size and modification time: a rewritten file opens afresh."""
    out = []
    for name in files:
        try:
            stat = os.stat(name)
        except OSError as exc:
            raise SourceError(f"cannot read {name}: {first_line(exc)}") from exc
        out.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def dataset_format(file_format: FileFormat) -> ds.FileFormat | str:
    # an empty CSV field is a missing value, as pandas reads it, not an empty string
    return (ds.CsvFileFormat(convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
            if file_format == "csv" else file_format)


def suffix_format(name: str) -> FileFormat | None:
    lower = name.lower()
    return next((fmt for suffix, fmt in _SUFFIX_FORMATS.items() if lower.endswith(suffix)), None)


def arrow_kind(data_type: pa.DataType) -> ColumnKind:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "numeric"
    if pa.types.is_timestamp(data_type) or pa.types.is_date(data_type):
        return "datetime"
    return "string"


def arrow_time_bound(column: str, field_type: pa.DataType, bound: datetime, compare: str) -> ds.Expression:
    field = ds.field(column)
    value = naive_utc(bound)
    if pa.types.is_date(field_type):
        field = field.cast(pa.timestamp("us"))
        scalar = pa.scalar(value, pa.timestamp("us"))
    else:
        # a naive datetime given to a zoned timestamp type is read as UTC, which is what we hold
        scalar = pa.scalar(value, pa.timestamp("us", tz=field_type.tz))
    return field >= scalar if compare == "ge" else field < scalar
