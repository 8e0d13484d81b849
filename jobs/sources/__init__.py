"""Model data sources: Parquet/CSV files (pyarrow datasets) and SQL tables or queries (SQLAlchemy).

A source reads only the columns asked for and only the rows of one time window; both are pushed
down to pyarrow or the database. Cached per process: database engines, and the opened pyarrow
dataset of a file set (its footer or header, reopened whenever a file's size or mtime changes).
Rows are never cached.

What a spec names is a SourceSpec (spec.py); open_source turns it into a FileSource (files.py) or an
SqlSource (sql.py), both Sources (base.py). The names below are the package's interface.
"""

from jobs.sources.base import ColumnKind, FileFormat, Source, SourceError, missing_column_message
from jobs.sources.files import FileSource
from jobs.sources.spec import SourceSpec, open_source
from jobs.sources.sql import SqlSource

__all__ = ["ColumnKind", "FileFormat", "FileSource", "Source", "SourceError", "SourceSpec", "SqlSource",
           "missing_column_message", "open_source"]
