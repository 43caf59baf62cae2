"""The pages' DataFrames, built column by column from plain values.

``pd.DataFrame(rows)`` infers every column from each Python object, and every ``astype`` or
assigned column copies the frame: at the dashboard's sizes that costs a data function more than
its queries. ``frame`` and ``to_frame`` build the frame once, each column typed as pandas would
infer it from the rows (or as asked), so a page gets the same frame for less.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


def as_date(value: Any) -> date | None:
    """Return a date (or datetime, or ISO text) as a date; None stays None."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def frame(columns: Mapping[str, Sequence], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return a DataFrame built column by column: typed as ``dtypes`` says, else as pandas would
    infer the column from rows.

    ``dtypes`` maps a column to a numpy dtype (what ``astype`` would make of it), ``"time"``
    (``time_column``), ``"seconds"`` (``seconds_column``) or ``"day"`` (``day_column``).
    """
    dtypes = dtypes or {}
    return pd.DataFrame({name: as_column(values, dtypes.get(name)) for name, values in columns.items()})


def to_frame(rows, columns: Sequence[str], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return query rows as a DataFrame with these columns (also when there are none), typed as
    ``frame`` types them."""
    rows = rows if isinstance(rows, list) else list(rows)
    values = zip(*rows, strict=True) if rows else ((),) * len(columns)
    return frame(dict(zip(columns, values, strict=True)), dtypes)


_NONE = type(None)
_STR = pd.api.types.pandas_dtype("str")  # looked up once: a lookup by name costs as much as the column


def as_column(values: Sequence, dtype: str | None = None):
    """Return one column's values typed as ``dtype``, or as pandas would infer them from rows."""
    if dtype == "time":
        return time_column(values)
    if dtype == "seconds":
        return seconds_column(values)
    if dtype == "day":
        return day_column(values)
    if dtype is not None:
        return np.array(values, dtype=dtype)
    if isinstance(values, (np.ndarray, pd.Index, pd.api.extensions.ExtensionArray)):
        return values
    if len(values) == 0:
        return np.array([], dtype=object)  # what pandas makes of a frame without rows
    kinds = set(map(type, values))
    missing = _NONE in kinds
    kinds.discard(_NONE)
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is int:  # with a missing value pandas makes the column float (NaN)
            return np.array(values, dtype=np.float64 if missing else np.int64)
        if kind is float:
            return np.array(values, dtype=np.float64)
        if kind is str:
            return pd.array(values, dtype=_STR)
        if kind is datetime:
            return pd.DatetimeIndex(values)
        if kind is bool and not missing:
            return np.array(values, dtype=bool)
    elif kinds == {int, float}:
        return np.array(values, dtype=np.float64)
    # All missing, or anything else (dates, dicts, mixed types): pandas infers it as from rows.
    return list(values)


def day_column(days: Sequence) -> np.ndarray:
    """Return dates (or ISO date strings) as a datetime64 column."""
    return np.array([as_date(d) for d in days], dtype="datetime64[D]").astype("datetime64[us]")


def time_column(values: Sequence) -> pd.Series | pd.DatetimeIndex:
    """Return timestamps (datetimes, ISO strings or None) as a datetime64 column."""
    if isinstance(values, (pd.Series, pd.Index)) and pd.api.types.is_datetime64_any_dtype(values):
        return values  # pandas already read the datetimes as such
    values = list(values)
    if any(isinstance(v, str) for v in values):  # SQLite's aggregates, format_ts
        return pd.to_datetime(values, format="ISO8601")
    return pd.DatetimeIndex(values)


def seconds_column(values: Sequence) -> pd.DatetimeIndex:
    """Return timestamps (datetimes or None) to the second, as ``time_column`` makes of their
    ``format_ts`` text (``YYYY-MM-DD HH:MM:SS``) without printing and parsing each."""
    if any(isinstance(v, datetime) for v in values):
        return pd.DatetimeIndex([v and v.replace(microsecond=0) for v in values])
    return time_column(values)
