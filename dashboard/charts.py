"""Altair chart builders: ``*_chart(df) -> alt.Chart``, no Streamlit calls.

Each takes the DataFrame a ``feedback_core.queries`` function returns. Rates are drawn with
their 95% interval; slices with too few impressions are marked, never drawn as a rate.
"""

from __future__ import annotations

from datetime import date, timedelta

import altair as alt
import pandas as pd

from feedback_core.settings import REASONS

RATE_AXIS = alt.Axis(format="%", title="Dislike rate")
# Days on a time axis: one label a day at most (a few days' axis labelled a day twice, at
# midnight and at noon).
DAY_AXIS = alt.Axis(format="%b %d", tickMinStep=24 * 3600 * 1000)
FEWEST_DAYS_SHOWN = 7
# A reason as the sidebar names it ("wrong genre"): the charts' axes and legends said "wrong_genre".
REASON_LABEL = "replace(datum.label, regexp('_', 'g'), ' ')"
GREY = "#9aa0a6"
# Fixed colours so a reason or a version looks the same on every chart and page.
# Vega's "tableau10", its first six: a reason keeps its colour whichever reasons a chart shows.
REASON_PALETTE = dict(
    zip(REASONS, ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b"), strict=True)
)


# Vega's "tableau20", its ten strong colours first, then its light ones five hues on: a
# version's colour follows from its number alone, the same on every chart whichever other
# versions the chart shows; v1 and v11 differ in hue too (v8 and v18 were a pink and its pale
# companion, hard to tell apart).
VERSION_PALETTE = (
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#439894", "#b79a20", "#d67195", "#9e765f", "#79706e",
    "#83bcb6", "#f2cf5b", "#fcbfd2", "#d8b5a5", "#bab0ac", "#9ecae9", "#ffbf79", "#88d27a", "#ff9d98", "#d6a5c9",
)  # fmt: skip


def version_colour(label: str) -> str:
    """Return the colour of a version label (``v7``; "no version" is grey)."""
    if not label.startswith("v") or not label[1:].isdigit():
        return GREY
    return VERSION_PALETTE[(int(label[1:]) - 1) % len(VERSION_PALETTE)]


def version_order(df: pd.DataFrame) -> list[str]:
    """Return the ``version`` labels of ``df`` in version order, "no version" last."""
    ordered = df.sort_values("model_version_id" if "model_version_id" in df else "version_id")
    labels = list(dict.fromkeys(ordered["version"]))
    return [v for v in labels if v != "no version"] + [v for v in labels if v == "no version"]


def version_color(df: pd.DataFrame, legend: bool = True, orient: str = "right") -> alt.Color:
    """Return the colour encoding of ``version``: versions in order, "no version" last, each in its
    own colour on every chart (``version_colour``)."""
    labels = version_order(df)
    scale = alt.Scale(domain=labels, range=[version_colour(v) for v in labels])
    shown = alt.Legend(orient=orient) if legend else None
    return alt.Color("version:N", title="Model version", scale=scale, legend=shown)


def reason_color(df: pd.DataFrame, legend: bool = True) -> alt.Color:
    """Return the colour encoding of the ``reason`` column: the reasons ``df`` holds, in their
    usual order, each in its own colour (a legend lists only what the chart shows)."""
    present = set(df["reason"])
    shown = [r for r in REASONS if r in present]
    scale = alt.Scale(domain=shown, range=[REASON_PALETTE[r] for r in shown])
    legend_shown = alt.Legend(labelExpr=REASON_LABEL) if legend else None
    return alt.Color("reason:N", title="Reason", scale=scale, legend=legend_shown)


def _rate_tooltip(x: str, x_title: str) -> list:
    return [
        alt.Tooltip(x, title=x_title),
        alt.Tooltip("version:N", title="Version"),
        alt.Tooltip("impressions:Q", format=","),
        alt.Tooltip("dislikes:Q", format=","),
        alt.Tooltip("rate:Q", format=".2%", title="Dislike rate"),
        alt.Tooltip("ci_low:Q", format=".2%", title="95% low"),
        alt.Tooltip("ci_high:Q", format=".2%", title="95% high"),
    ]


def _label_lanes(activations: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """Give each activation's label a lane (pixels from the top): the first lane whose last label
    is far enough to its left, so that labels of close activations never overprint."""
    if activations.empty:
        return activations.assign(lane=[], side=[])
    moments = pd.to_datetime(activations["activated_at"])
    days = pd.to_datetime(rates["day"]) if len(rates) else moments
    start, end = min(days.min(), moments.min()), max(days.max() + pd.Timedelta(days=1), moments.max())
    span = max((end - start).total_seconds(), 1.0)
    room = 0.14 * span  # about a label's width on a chart as wide as the page
    ends: list[float] = []  # per lane, where its last label ends (seconds from the start)
    lanes, sides = [], []
    for moment in moments:
        at = (moment - start).total_seconds()
        right = at + room <= span
        first, last = (at, at + room) if right else (at - room, at)
        lane = next((i for i, taken in enumerate(ends) if taken <= first), len(ends))
        if lane == len(ends):
            ends.append(last)
        ends[lane] = last
        lanes.append(12 + 14 * lane)
        sides.append("left" if right else "right")
    return activations.assign(lane=lanes, side=sides)


def daily_rate_chart(
    rates: pd.DataFrame, activations: pd.DataFrame, today: date | None = None
) -> alt.LayerChart:
    """Dislike rate per day with its 95% band, one colour per serving version, activations marked.

    ``today``'s rate, still rising while its lists collect dislikes, is a hollow point without a
    band, apart from the line of the days that are over."""
    # A day's point at its noon: activations are drawn at their moment, and a version activated
    # at 09:20 had its first day's point at midnight, before its own line, as if the change came first.
    rates = rates.assign(noon=pd.to_datetime(rates["day"]) + pd.Timedelta(hours=12))
    current = (
        pd.to_datetime(rates["day"]) == pd.Timestamp(today) if today is not None else rates["day"].isna()
    )
    enough = rates[rates["enough"] & ~current]
    so_far = rates[rates["enough"] & current]
    few = rates[~rates["enough"]]
    # Each day labelled under its point (at noon): labels at midnight fell between two points.
    noons = sorted(set(rates["noon"]))
    days = [alt.DateTime(year=t.year, month=t.month, date=t.day, hours=12) for t in noons]
    x = alt.X("noon:T", title=None, axis=alt.Axis(format="%b %d", values=days) if days else DAY_AXIS)
    # Every value drawn 0 (no dislike on a list yet): an axis up to 1%, not one of "0.000000%".
    # Else up to the highest band: the scale left the bands' upper edges out, cutting them flat.
    drawn = pd.concat([enough["rate"], enough["ci_high"], so_far["rate"]]).fillna(0)
    y_scale = alt.Scale()
    if len(drawn):
        y_scale = alt.Scale(domain=[0, float(drawn.max())] if (drawn > 0).any() else [0, 0.01])
    color = version_color(rates, orient="bottom")  # below the chart: the activation labels are above
    band = (
        alt.Chart(enough)
        .mark_area(opacity=0.18)
        .encode(
            x,
            alt.Y("ci_low:Q", axis=RATE_AXIS, scale=y_scale),
            y2="ci_high:Q",
            color=color,
            tooltip=_rate_tooltip("day:T", "Day"),  # its own, formatted (raw 0.103018595735 before)
        )
    )
    line = (
        alt.Chart(enough)
        .mark_line(point=True)
        .encode(x, alt.Y("rate:Q"), color=color, tooltip=_rate_tooltip("day:T", "Day"))
    )
    partial = (
        alt.Chart(so_far)
        .mark_point(filled=False, size=70, strokeWidth=2)
        .encode(
            x,
            alt.Y("rate:Q"),
            color=color,
            tooltip=[alt.Tooltip("day:T", title="Today so far"), *_rate_tooltip("day:T", "Day")[1:]],
        )
    )
    # Too few impressions: a grey marker along the top edge, no rate.
    sparse = (
        alt.Chart(few)
        .mark_point(shape="triangle-down", color=GREY, filled=True, size=60)
        .encode(
            x,
            y=alt.value(6),
            tooltip=[
                alt.Tooltip("day:T", title="Day"),
                alt.Tooltip("version:N", title="Version"),
                alt.Tooltip("impressions:Q", title="Too few impressions"),
            ],
        )
    )
    rule = (
        alt.Chart(activations)
        .mark_rule(strokeDash=[4, 4], color="#444")
        .encode(
            x="activated_at:T",
            tooltip=[
                alt.Tooltip("version:N", title="Activated"),
                alt.Tooltip("activated_at:T", format="%Y-%m-%d %H:%M"),
            ],
        )
    )
    laned = _label_lanes(activations, rates)
    # Right of its rule, or left of it near the chart's right edge (else a label runs off).
    labels = [
        alt.Chart(laned[laned["side"] == side])
        .mark_text(align=side, dx=dx, dy=-4, color="#444", fontSize=11)
        .encode(x="activated_at:T", y=alt.Y("lane:Q", scale=None, axis=None), text=alt.Text("label:N"))
        for side, dx in (("left", 4), ("right", -4))
    ]
    return alt.layer(band, line, partial, sparse, rule, *labels).properties(height=320)


def reason_bar_chart(df: pd.DataFrame) -> alt.Chart:
    """Dislikes per reason, largest first."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            # Whole dislikes: a person's one or two were drawn on ticks of 0.1.
            x=alt.X("dislikes:Q", title="Dislikes", axis=alt.Axis(tickMinStep=1, format=",d")),
            y=alt.Y("reason:N", sort="-x", title=None, axis=alt.Axis(labelExpr=REASON_LABEL)),
            color=reason_color(df, legend=False),
            tooltip=["reason:N", alt.Tooltip("dislikes:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=220)
    )


def day_scale(days: pd.Series) -> alt.Scale:
    """A time scale over ``days`` that spans at least ``FEWEST_DAYS_SHOWN`` days, ending with the
    last: a day's bar stays a day wide (over one day, it filled the whole chart)."""
    if days.empty:
        return alt.Scale()
    first, last = pd.Timestamp(days.min()), pd.Timestamp(days.max())
    if (last - first).days >= FEWEST_DAYS_SHOWN - 1:
        return alt.Scale()
    start = last - timedelta(days=FEWEST_DAYS_SHOWN - 1)
    return alt.Scale(domain=[start.isoformat(), (last + timedelta(days=1)).isoformat()])


# How far a day's count has got: its bar is lighter until the day has settled.
SETTLED, SO_FAR = "settled", "so far (day not settled)"
COUNT_OPACITY = alt.Scale(domain=[SETTLED, SO_FAR], range=[1.0, 0.4])


def reason_trend_chart(df: pd.DataFrame, last_settled: date | None = None) -> alt.Chart:
    """Dislikes per day, stacked by reason.

    The days after ``last_settled`` (today, and yesterday in the first hours of today), whose
    lists are still collecting dislikes, are lighter bars counted "so far": they only grow."""
    later = pd.to_datetime(df["day"]) > pd.Timestamp(last_settled) if last_settled is not None else None
    df = df.assign(counted=SETTLED if later is None else later.map({True: SO_FAR, False: SETTLED}))
    # A legend for the lighter bars only where there are some.
    shown = alt.Legend(title=None) if (df["counted"] == SO_FAR).any() else None
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("yearmonthdate(day):T", title=None, axis=DAY_AXIS, scale=day_scale(df["day"])),
            y=alt.Y("sum(dislikes):Q", title="Dislikes", stack="zero"),
            color=reason_color(df),
            opacity=alt.Opacity("counted:O", scale=COUNT_OPACITY, legend=shown),
            tooltip=[
                alt.Tooltip("day:T"),
                "reason:N",
                alt.Tooltip("sum(dislikes):Q", title="dislikes"),
                alt.Tooltip("counted:O", title="count"),
            ],
        )
        .properties(height=280)
    )


def reason_genre_heatmap(df: pd.DataFrame) -> alt.LayerChart:
    """Reason x genre heatmap of dislikes."""
    base = alt.Chart(df).encode(
        # Every genre labelled (overlapping labels were dropped: 8 of 15 named).
        x=alt.X("genre:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=140, labelOverlap=False)),
        y=alt.Y("reason:N", title=None, axis=alt.Axis(labelExpr=REASON_LABEL)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("dislikes:Q", scale=alt.Scale(scheme="reds"), title="Dislikes"),
        tooltip=["reason:N", "genre:N", alt.Tooltip("dislikes:Q", format=",")],
    )
    labels = base.mark_text(fontSize=11).encode(text="dislikes:Q")
    return alt.layer(cells, labels).properties(height=260)


SCORE_BUCKETS = [f"{b / 10:.1f}–{(b + 1) / 10:.1f}" for b in range(10)]


def score_histogram_chart(df: pd.DataFrame) -> alt.Chart:
    """Predicted scores of disliked items: in each score bucket, one bar per version side by side
    (shares of that version's dislikes), so versions compare bar to bar without hiding each other."""
    df = df.assign(scores=[SCORE_BUCKETS[int(b)] for b in df["bucket"]])
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X(
                "scores:N",
                title="Predicted score of the disliked item",
                scale=alt.Scale(domain=SCORE_BUCKETS),  # every bucket, empty ones too
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset=alt.XOffset("version:N", scale=alt.Scale(domain=version_order(df))),
            y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="Share of the version's dislikes"),
            color=version_color(df),
            tooltip=[
                "version:N",
                alt.Tooltip("scores:N", title="predicted score"),
                alt.Tooltip("dislikes:Q", format=","),
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(height=300)
    )


def confident_mistakes_chart(df: pd.DataFrame) -> alt.Chart:
    """Films with the most high-score dislikes."""
    df = df.assign(film=df["title"].str.slice(0, 60) + " (#" + df["movie_id"].astype(str) + ")")
    return (
        alt.Chart(df)
        .mark_bar(color="#d6336c")
        .encode(
            x=alt.X("high_score_dislikes:Q", title="Dislikes with a predicted score ≥ 0.7"),
            y=alt.Y("film:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[
                alt.Tooltip("film:N", title="Film"),
                alt.Tooltip("high_score_dislikes:Q", title="High-score dislikes"),
                alt.Tooltip("dislikes:Q", title="All dislikes"),
                alt.Tooltip("mean_predicted_score:Q", format=".2f", title="Mean score"),
            ],
        )
        .properties(height=alt.Step(22))
    )


def version_rates_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Each version's dislike rate with its 95% interval (versions with too few impressions left out)."""
    enough = df[df["enough"]]
    y = alt.Y("version:N", title=None, sort=alt.SortField("version_id", order="descending"))
    bars = (
        alt.Chart(enough)
        .mark_rule(strokeWidth=3)
        .encode(
            x=alt.X("ci_low:Q", axis=RATE_AXIS),
            x2="ci_high:Q",
            y=y,
            color=version_color(df, legend=False),
        )
    )
    points = (
        alt.Chart(enough)
        .mark_point(filled=True, size=90)
        .encode(
            x="rate:Q",
            y=y,
            color=version_color(df, legend=False),
            tooltip=_rate_tooltip("version:N", "Version"),
        )
    )
    return alt.layer(bars, points).properties(height=alt.Step(34))


def weights_chart(df: pd.DataFrame) -> alt.LayerChart:
    """A user's effective feature weights around the neutral 1.0."""
    df = df.assign(feature=df["feature_type"] + ": " + df["feature_value"].str.slice(0, 50))
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("weight:Q", scale=alt.Scale(domain=[0, 2]), title="Effective weight (1.0 = unchanged)"),
            y=alt.Y("feature:N", sort="x", title=None, axis=alt.Axis(labelLimit=240)),
            color=alt.condition("datum.weight < 1", alt.value("#d6336c"), alt.value("#2f9e44")),
            tooltip=["feature:N", alt.Tooltip("weight:Q", format=".3f")],
        )
    )
    neutral = alt.Chart(pd.DataFrame({"weight": [1.0]})).mark_rule(color="#444").encode(x="weight:Q")
    return alt.layer(bars, neutral).properties(height=alt.Step(22))
