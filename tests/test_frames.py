"""frames.py: the pages' DataFrames, built column by column, are what pandas makes of the rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from feedback_core import frames
from feedback_core.db import format_ts

DAY = datetime(2026, 11, 1, 12, 30, 5, 123456)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([1, 2, 3], id="ints"),
        pytest.param([1, None, 3], id="ints-with-a-gap"),
        pytest.param([1.5, float("nan"), 2.0], id="floats"),
        pytest.param([1, 2.5, None], id="ints-and-floats"),
        pytest.param(["a", "é", ""], id="text"),
        pytest.param(["a", None], id="text-with-a-gap"),
        pytest.param([None, None], id="all-missing"),
        pytest.param([DAY, DAY + timedelta(hours=1)], id="times"),
        pytest.param([DAY, None], id="times-with-a-gap"),
        pytest.param([True, False], id="flags"),
        pytest.param([True, None], id="flags-with-a-gap"),
        pytest.param([date(2026, 11, 1)], id="dates"),
        pytest.param([{"a": 1}, ["b"]], id="objects"),
        pytest.param(["a", 1], id="mixed"),
        pytest.param([], id="no-rows"),
    ],
)
def test_frames_are_typed_as_pandas_infers_them_from_rows(values):
    rows = [(v, i) for i, v in enumerate(values)]
    pd.testing.assert_frame_equal(
        frames.to_frame(rows, ["value", "n"]), pd.DataFrame(rows, columns=["value", "n"]), check_exact=True
    )
    # A named type is what astype makes of the inferred column.
    if all(v is None or isinstance(v, (int, float)) for v in values) and None not in values:
        pd.testing.assert_frame_equal(
            frames.to_frame(rows, ["value", "n"], {"value": "float64"}),
            pd.DataFrame(rows, columns=["value", "n"]).astype({"value": "float64"}),
        )


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([DAY, DAY.replace(microsecond=999999), None], id="times"),
        pytest.param([None, None], id="all-missing"),
        pytest.param([], id="none"),
    ],
)
def test_seconds_are_the_times_as_the_system_formats_them(values):
    expected = frames.time_column([format_ts(v) for v in values])
    pd.testing.assert_index_equal(pd.Index(frames.seconds_column(values)), pd.Index(expected))


@pytest.mark.parametrize(
    "rows", [[(date(2026, 11, 1), 3, DAY), (date(2026, 11, 2), 4, None)], []], ids=["rows", "none"]
)
def test_named_types_are_what_assigning_and_astype_made_of_the_columns(rows):
    got = frames.to_frame(rows, ["day", "n", "at"], {"day": "day", "n": "int64", "at": "time"})
    expected = pd.DataFrame([(n, at) for _, n, at in rows], columns=["n", "at"]).astype({"n": "int64"})
    expected["at"] = frames.time_column(expected["at"])
    expected.insert(0, "day", frames.day_column([day for day, _, _ in rows]))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
