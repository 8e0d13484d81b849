"""Parquet and CSV in object storage (any fsspec URL: s3://, gs://, ...) and partitioned datasets.

Credentials come from where the filesystem library looks for them (AWS_* variables or a profile for S3,
GOOGLE_APPLICATION_CREDENTIALS for GCS), read afresh at each open; a URL never carries them. A partitioned
dataset (hive style, `root/dt=2026-11-30/part-0.parquet`) read over a time window lists only the window's
partition folders and keeps only their rows (a pyarrow filter on the partition column); it is listed in full
only when read without a window (a reference).
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from jobs.sources.base import ColumnKind, FileFormat, Source, SourceError
from jobs.sources.files import arrow_kind, arrow_time_bound, dataset_format, suffix_format
from jobs.sources.frames import first_line, naive_utc, normalise

URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_SECRET_QUERY = re.compile(r"(key|secret|token|password|signature|credential)", re.IGNORECASE)
_PACKAGES = {"s3": "s3fs (pip install 'flywheel[s3]')", "s3a": "s3fs (pip install 'flywheel[s3]')",
             "gs": "gcsfs (pip install 'flywheel[gcs]')", "gcs": "gcsfs (pip install 'flywheel[gcs]')"}
_CREDENTIALS = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) where Flywheel runs",
    "gs": "set GOOGLE_APPLICATION_CREDENTIALS (a service account file) where Flywheel runs",
}
# The steps a partition format can name, finest first: a window lists one folder per step it touches.
_STEPS = (("%H", "hour"), ("%d", "day"), ("%m", "month"), ("%Y", "year"))
_MOST_FOLDERS = 5000  # a longer window is listed in full rather than folder by folder


def url_scheme(path: str) -> str | None:
    """The scheme of an object-storage URL (`s3`, `gs`...), None for a local path (`file://` included)."""
    match = URL.match(path)
    if match is None or match.group(1).lower() == "file":
        return None
    return match.group(1).lower()


def credentials_in_url(path: str) -> str | None:
    """Why this URL may not be written in a spec (it carries credentials), or None."""
    parts = urlsplit(path)
    if "@" in parts.netloc or _SECRET_QUERY.search(parts.query):
        scheme = parts.scheme.lower()
        where = _CREDENTIALS.get(scheme.rstrip("a"), "give them through the storage library's environment "
                                                       "variables or profile where Flywheel runs")
        return (f"credentials don't belong in a spec: write {scheme}://bucket/path without them and {where}")
    return None


def partition_values(fmt: str, start: datetime, end: datetime) -> list[str] | None:
    """Each partition value of `fmt` a window [start, end) touches, in order; None when there are too many."""
    step = next(name for code, name in _STEPS if code in fmt)
    moment = _floor(naive_utc(start), step)
    end = naive_utc(end)
    values: list[str] = []
    while moment < end:
        value = moment.strftime(fmt)
        if not values or values[-1] != value:
            values.append(value)
            if len(values) > _MOST_FOLDERS:
                return None
        moment = _next(moment, step)
    return values


class ObjectSource(Source):
    """One object, every file under a prefix, or a hive-partitioned dataset, on any pyarrow filesystem."""

    def __init__(self, location: str, *, file_format: FileFormat | None,
                 partition: tuple[str, str] | None = None) -> None:
        self._location = location
        self._format = file_format
        self._partition = partition  # (column, strftime format)
        self._fs, self._root = _filesystem(location)
        self._schema_dataset: ds.Dataset | None = None

    def describe(self) -> str:
        return self._location

    def schema(self) -> dict[str, ColumnKind]:
        # the partition column names folders, not data: production would otherwise grow a column the
        # reference does not have
        hidden = self._partition[0] if self._partition else None
        return {field.name: arrow_kind(field.type) for field in self._sample().schema if field.name != hidden}

    def fingerprint(self) -> Hashable:
        return tuple((f.path, f.size, f.mtime_ns) for f in self._files()), self._format, self._partition

    def read(self, columns: Sequence[str], *, time_column: str | None = None,
             start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        wanted, kinds = self._checked(columns, time_column, start, end)
        schema = self._sample().schema
        windowed = self._partition is not None and start is not None and end is not None
        values = partition_values(self._partition[1], start, end) if windowed else None
        condition = None
        if time_column is not None:
            for bound, compare in ((start, "ge"), (end, "lt")):
                if bound is not None:
                    term = arrow_time_bound(time_column, schema.field(time_column).type, bound, compare)
                    condition = term if condition is None else condition & term
        if values is not None:
            term = ds.field(self._partition[0]).isin(values)
            condition = term if condition is None else condition & term
        if self._partition is None:
            dataset = self._sample()  # every file already
        else:
            files = self._files(values)
            dataset = self._dataset([f.path for f in files], schema) if files else None
        table = (schema.empty_table().select(wanted) if dataset is None
                 else self._guarded(lambda: dataset.to_table(columns=wanted, filter=condition)))
        return normalise(table.to_pandas(), {name: kinds[name] for name in wanted}, self.describe())

    def _sample(self) -> ds.Dataset:
        """A dataset of a few files, for the schema: the newest partition's, or all files when not partitioned."""
        if self._schema_dataset is None:
            if self._partition is None:
                files = self._files()
            else:
                folders = self._partition_folders()
                if not folders:
                    column = self._partition[0]
                    raise SourceError(f"{self.describe()}: no partition folders like {column}=... under it "
                                      f"(a partitioned dataset keeps its files in {column}=<value> folders)")
                column, fmt = self._partition
                newest = folders[max(folders, key=lambda value: (_parsed(value, fmt), value))]
                files = self._data_files(self._list(newest, recursive=True))
                if not files:
                    raise SourceError(f"{self.describe()}: no .parquet or .csv file in {newest}")
            self._schema_dataset = self._dataset([f.path for f in files], None)
        return self._schema_dataset

    def _dataset(self, paths: list[str], schema: pa.Schema | None) -> ds.Dataset:
        file_format = self._format or suffix_format(paths[0])
        if file_format is None:
            raise SourceError(f"cannot tell the format of {self.describe()}: name files .parquet or .csv, "
                              "or set 'format'")
        partitioning = (ds.partitioning(pa.schema([(self._partition[0], pa.string())]), flavor="hive")
                        if self._partition is not None else None)
        return self._guarded(lambda: ds.dataset(paths, schema=schema, filesystem=self._fs,
                                                format=dataset_format(file_format), partitioning=partitioning,
                                                partition_base_dir=self._root))

    def _files(self, values: list[str] | None = None) -> list[pafs.FileInfo]:
        if values is not None:
            # one listing of the partition folders' names, then the files of the window's folders only
            folders = self._partition_folders()
            return [info for value in values if value in folders  # in date order, as the rows were written
                    for info in self._data_files(self._list(folders[value], recursive=True))]
        info = self._guarded(lambda: self._fs.get_file_info(self._root))
        if info.type == pafs.FileType.File:
            return [info]
        if info.type == pafs.FileType.NotFound:
            self._no_bucket()
            raise SourceError(f"nothing found at {self.describe()}: check the path (a folder is read whole)")
        files = self._data_files(self._list(self._root, recursive=True))
        if not files:
            raise SourceError(f"no .parquet or .csv file under {self.describe()}")
        return files

    def _partition_folders(self) -> dict[str, str]:
        """Partition value -> its folder, from one listing of the dataset folder's first level."""
        prefix = f"{self._partition[0]}="
        infos = self._list(self._root, recursive=False, missing_ok=True)
        if not infos and self._guarded(lambda: self._fs.get_file_info(self._root)).type == pafs.FileType.NotFound:
            self._no_bucket()
            raise SourceError(f"nothing found at {self.describe()}: check the path (the dataset's folder)")
        return {info.base_name[len(prefix):]: info.path for info in infos
                if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)}

    def _data_files(self, infos: list[pafs.FileInfo]) -> list[pafs.FileInfo]:
        # _SUCCESS, .crc and the like sit next to the data files that writers leave
        return sorted((i for i in infos if i.type == pafs.FileType.File and not i.base_name.startswith(("_", "."))
                       and (self._format is not None or suffix_format(i.base_name) is not None)),
                      key=lambda i: i.path)

    def _no_bucket(self) -> None:
        """Raise the SourceError naming a missing bucket, when the URL's bucket is what is missing."""
        bucket = urlsplit(self._location).netloc
        if bucket and url_scheme(self._location) in _CREDENTIALS and \
                self._guarded(lambda: self._fs.get_file_info(bucket)).type == pafs.FileType.NotFound:
            raise SourceError(f"no bucket '{bucket}' (reading {self.describe()}): check the bucket name in the "
                              "path, and that AWS_ENDPOINT_URL (if set) is the server that holds it")

    def _list(self, folder: str, *, recursive: bool, missing_ok: bool = False) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(folder, recursive=recursive, allow_not_found=missing_ok)
        return self._guarded(lambda: self._fs.get_file_info(selector))

    def _guarded(self, call: Any) -> Any:
        try:
            return call()
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - every storage library raises its own; each is said in one line
            raise SourceError(explain(exc, self._location)) from None


def explain(exc: BaseException, location: str) -> str:
    """One line naming what went wrong reading `location` and what to do about it."""
    scheme = (url_scheme(location) or "file").rstrip("a")
    name = type(exc).__name__
    text = first_line(exc)
    lowered = text.lower()
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError") or (
            "credentials" in lowered and ("unable to locate" in lowered or "could not" in lowered)):
        return f"no credentials to read {location}: {_CREDENTIALS.get(scheme, 'configure the storage library')}"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError",
                "ConnectionRefusedError", "ServerDisconnectedError") or "could not connect" in lowered:
        endpoint = _endpoint() if scheme == "s3" else None
        where = f" at {endpoint}" if endpoint else ""
        fix = "check AWS_ENDPOINT_URL and that the server is up" if scheme == "s3" else "check the network"
        return f"cannot reach the storage server{where} to read {location}: {fix}"
    if "bucket" in lowered and ("not exist" in lowered or "nosuchbucket" in lowered or "not found" in lowered):
        bucket = urlsplit(location).netloc
        return f"no bucket '{bucket}' (reading {location}): check the bucket name in the path"
    if isinstance(exc, PermissionError) or any(w in text for w in ("AccessDenied", "Forbidden", "InvalidAccessKeyId",
                                                                   "SignatureDoesNotMatch", "403")):
        return (f"access denied to {location}: give the credentials read access to it "
                f"({_CREDENTIALS.get(scheme, 'configure the storage library')})")
    if isinstance(exc, FileNotFoundError):
        return f"nothing found at {location}: check the path"
    return f"cannot read {location}: {text}"


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    scheme = url_scheme(location)
    if scheme is None:
        path = location.removeprefix("file://")
        return pafs.LocalFileSystem(), os.path.abspath(path)
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise SourceError(f"reading {scheme}:// paths needs {_PACKAGES.get(scheme, 'fsspec')}") from None
    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if scheme in ("s3", "s3a") and (endpoint := _endpoint()):
        options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        fs, root = url_to_fs(location, **options)
    except ImportError:
        raise SourceError(f"reading {scheme}:// paths needs {_PACKAGES.get(scheme, 'its fsspec package')}") from None
    except ValueError as exc:
        if "protocol" in str(exc).lower():
            raise SourceError(f"unknown storage '{scheme}://' in {location}: use s3://, gs://, az:// or another "
                              "fsspec protocol") from None
        raise SourceError(explain(exc, location)) from None
    except Exception as exc:  # noqa: BLE001 - see ObjectSource._guarded
        raise SourceError(explain(exc, location)) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root.rstrip("/")


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _parsed(value: str, fmt: str) -> datetime:
    """A partition folder's date, for finding the newest; a value in another format sorts first."""
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return datetime.min


def _floor(moment: datetime, step: str) -> datetime:
    if step == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if step == "day":
        return day
    return day.replace(day=1) if step == "month" else day.replace(month=1, day=1)


def _next(moment: datetime, step: str) -> datetime:
    if step in ("hour", "day"):
        return moment + timedelta(**{f"{step}s": 1})
    if step == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment.replace(year=moment.year + 1)
