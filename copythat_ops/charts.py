"""Charts: matplotlib figures from the toolkit's DataFrames, drawn headless (Agg) or inline in a notebook.

Each chart takes the DataFrame a library function returns and gives back a
Figure; nothing here queries the database. `figure()`, `PALETTE`,
`bytes_axis()` and `note_empty()` give every chart the same look; `alt_text()`
describes a chart in words, for a report's readers who cannot see it.

Example:
    >>> from copythat_ops import charts, monitor
    >>> fig = charts.table_sizes_chart(monitor.table_sizes(), top=5)
    >>> fig.savefig("sizes.png")
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .display import readable_bytes

PALETTE = {
    "primary": "#4C72B0",
    "secondary": "#DD8452",
    "tertiary": "#55A868",
    "ok": "#55A868",
    "warn": "#E1A23B",
    "crit": "#C44E52",
    "muted": "#8C8C8C",
}


def figure(title: str, *, ncols: int = 1, size: tuple[float, float] = (9, 4)) -> tuple[Figure, np.ndarray]:
    """Return a new figure with `ncols` axes side by side (always an array) in the toolkit's style, detached from pyplot's state.

    Example:
        >>> fig, (ax,) = figure("Connections")
        >>> fig.get_suptitle()
        'Connections'
    """
    fig, axes = plt.subplots(1, ncols, figsize=size, squeeze=False, layout="constrained")
    plt.close(fig)  # returned, not shown twice by a notebook
    fig.suptitle(title, fontweight="bold")
    for ax in axes[0]:
        ax.grid(axis="x", color="#E5E5E5")
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes[0]


def bytes_axis(ax: Axes, axis: str = "x") -> None:
    """Label `axis` of `ax` in readable sizes (kB, MB, GB).

    Example:
        >>> fig, (ax,) = figure("Sizes")
        >>> bytes_axis(ax)
    """
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda value, _: readable_bytes(value)))


def note_empty(ax: Axes, message: str) -> None:
    """Write `message` in the middle of an axes that has nothing to plot.

    Example:
        >>> fig, (ax,) = figure("Long-running queries")
        >>> note_empty(ax, "none")
    """
    ax.text(0.5, 0.5, message, ha="center", va="center", color=PALETTE["muted"], transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def alt_text(fig: Figure, *, most: int = 6) -> str:
    """Return what `fig` shows, in words: its title, then per chart its kind, axes, series and the first `most` categories, or what it says when empty.

    A report gives it as the chart's alt text, and a notebook as the figure's text form.

    Example:
        >>> fig, (ax,) = figure("Long-running queries")
        >>> note_empty(ax, "no long-running queries")
        >>> alt_text(fig)
        'Long-running queries: no long-running queries.'
    """
    parts = [_axes_text(ax, most) for ax in fig.axes if ax.get_visible()]
    title = fig.get_suptitle() or fig.get_label() or "Chart"
    return f"{title}: " + " ".join(part for part in parts if part) if any(parts) else f"{title}."


def _axes_text(ax: Axes, most: int) -> str:
    """One chart of a figure in words, e.g. 'by state: horizontal bars of connections for idle, active.'"""
    title = f"{ax.get_title()}: " if ax.get_title() else ""
    if not ax.has_data():
        notes = [t.get_text() for t in ax.texts if t.get_text()]
        return f"{title}{'; '.join(notes) or 'empty'}." if title or notes else ""
    kinds, categories = [], []
    for container in ax.containers:
        if isinstance(container, BarContainer):
            horizontal = container.orientation == "horizontal"
            kinds.append("horizontal bars" if horizontal else "bars")
            labels = ax.get_yticklabels() if horizontal else ax.get_xticklabels()
            categories = [t.get_text() for t in labels if t.get_text()]
            break
    if any(isinstance(p, Polygon) for p in ax.patches):
        kinds.append("histograms" + (" on a log scale" if ax.get_xscale() == "log" else ""))
    if ax.collections:
        kinds.append("areas" if not any(type(c).__name__ == "PathCollection" for c in ax.collections) else "points")
    if any(len(line.get_xdata()) > 2 for line in ax.get_lines()):  # not a threshold or marker line
        kinds.append("lines")
    words = title + " and ".join(dict.fromkeys(kinds or ["a chart"]))
    axis = ax.get_ylabel() if ax.get_ylabel() and not categories else ax.get_xlabel()
    if axis:
        words += f" of {axis}"
    if ax.get_ylabel() and ax.get_xlabel() and not categories:
        words += f" against {ax.get_xlabel()}"
    if categories:
        shown = categories[::-1] if kinds[:1] == ["horizontal bars"] and not ax.yaxis_inverted() else categories  # top first
        more = f" and {len(shown) - most} more" if len(shown) > most else ""
        words += f" for {', '.join(shown[:most])}{more}"
    legend = ax.get_legend()
    series = [t.get_text() for t in legend.get_texts()] if legend else []
    if series:
        words += f"; legend: {', '.join(series)}"
    return words + "."


def _barh(ax: Axes, counts: pd.Series, color: str, xlabel: str) -> None:
    """Horizontal bars of `counts` (index as labels), largest on top."""
    counts = counts.sort_values()
    ax.barh([str(label) for label in counts.index], counts.to_numpy(), color=color)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)


def connections_chart(frame: pd.DataFrame, *, top: int = 10) -> Figure:
    """Return bars of connections by state and by application (the `top` busiest) from `monitor.connections()`.

    Example:
        >>> from copythat_ops import monitor
        >>> connections_chart(monitor.connections()).axes[0].get_title()
        'by state'
    """
    fig, (by_state, by_app) = figure("Connections", ncols=2)
    by_state.set_title("by state")
    by_app.set_title("by application")
    if frame.empty:
        note_empty(by_state, "no connections")
        note_empty(by_app, "no connections")
        return fig
    _barh(by_state, frame.groupby(frame["state"].fillna("(none)"))["connections"].sum(), PALETTE["primary"], "connections")
    apps = frame.groupby(frame["application_name"].replace("", "(unnamed)").fillna("(unnamed)"))["connections"].sum()
    _barh(by_app, apps.nlargest(top), PALETTE["secondary"], "connections")
    return fig


def table_sizes_chart(frame: pd.DataFrame, *, top: int = 10) -> Figure:
    """Return stacked bars of the `top` largest tables split into table, indexes and TOAST, from `monitor.table_sizes()`.

    Example:
        >>> from copythat_ops import monitor
        >>> table_sizes_chart(monitor.table_sizes(), top=5).axes[0].get_xlabel()
        'size'
    """
    fig, (ax,) = figure(f"Largest tables (top {top})")
    if frame.empty:
        note_empty(ax, "no tables")
        return fig
    largest = frame.nlargest(top, "total_bytes").iloc[::-1]
    labels = np.where(largest["schema"] == "public", largest["table"], largest["schema"] + "." + largest["table"])
    left = np.zeros(len(largest))
    for column, label, color in [
        ("table_bytes", "table", PALETTE["primary"]),
        ("index_bytes", "indexes", PALETTE["secondary"]),
        ("toast_bytes", "TOAST", PALETTE["tertiary"]),
    ]:
        values = largest[column].to_numpy(dtype=float)
        ax.barh(labels, values, left=left, label=label, color=color)
        left += values
    bytes_axis(ax)
    ax.set_xlabel("size")
    ax.legend(loc="lower right", frameon=False)
    return fig


def cache_hit_chart(frame: pd.DataFrame, *, threshold: float = 99) -> Figure:
    """Return bars of the cache hit % of tables and indexes from `monitor.cache_hit_ratio()`, with the `threshold` line (pghero: 99 %).

    Bars under the threshold are drawn in the warning colour; a kind with no reads yet is labelled so.

    Example:
        >>> from copythat_ops import monitor
        >>> len(cache_hit_chart(monitor.cache_hit_ratio()).axes[0].patches)
        2
    """
    fig, (ax,) = figure("Cache hit ratio", size=(6, 3.5))
    percent = pd.to_numeric(frame["hit_percent"], errors="coerce")
    low = percent.min()
    left = 0 if pd.isna(low) else max(0, min(low, threshold) - 5)  # zoom in on the range that matters
    colors = [PALETTE["muted"] if pd.isna(p) else PALETTE["warn"] if p < threshold else PALETTE["ok"] for p in percent]
    bars = ax.barh(frame["kind"].tolist(), percent.fillna(left).to_numpy(), color=colors)
    ax.bar_label(bars, labels=["no reads yet" if pd.isna(p) else f"{p:.2f} %" for p in percent], padding=3)
    ax.axvline(threshold, color=PALETTE["crit"], linestyle="--", linewidth=1, label=f"{threshold:g} %")
    ax.set_xlim(left, 100)
    ax.set_xlabel("% of blocks found in shared buffers")
    ax.legend(loc="lower left", frameon=False)
    return fig


def long_running_chart(frame: pd.DataFrame, *, top: int = 15) -> Figure:
    """Return bars of how long each of the `top` longest queries from `monitor.long_running_queries()` has run, labelled with pid and query.

    Example:
        >>> from copythat_ops import monitor
        >>> long_running_chart(monitor.long_running_queries("1 h")).axes[0].texts[0].get_text()
        'no long-running queries'
    """
    fig, (ax,) = figure("Long-running queries")
    if frame.empty:
        note_empty(ax, "no long-running queries")
        return fig
    longest = frame.nlargest(top, "duration_seconds")
    labels = [f"{pid}: {' '.join(str(query).split())[:40]}" for pid, query in zip(longest["pid"], longest["query"], strict=True)]
    _barh(ax, pd.Series(longest["duration_seconds"].to_numpy(), index=labels), PALETTE["warn"], "seconds running")
    return fig


def throughput_chart(frame: pd.DataFrame) -> Figure:
    """Return lines of jobs created, completed and failed per bucket from `jobs.job_throughput()`.

    Example:
        >>> from copythat_ops import jobs
        >>> [line.get_label() for line in throughput_chart(jobs.job_throughput("1h", since="1 day")).axes[0].lines]
        ['created', 'completed', 'failed']
    """
    step = frame["bucket"].diff().min() if len(frame) > 1 else pd.NaT
    fig, (ax,) = figure(f"Extraction jobs per {_step_label(step)}", size=(10, 4))
    for column, color in (("created", PALETTE["primary"]), ("completed", PALETTE["ok"]), ("failed", PALETTE["crit"])):
        ax.plot(frame["bucket"], frame[column], label=column, color=color, linewidth=1.4)
    ax.set_ylabel("jobs")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False)
    fig.autofmt_xdate()
    return fig


def duration_chart(frame: pd.DataFrame, *, by: str = "extraction_type", bins: int = 60) -> Figure:
    """Return log-scale histograms of how long finished jobs took, one per `by` value, from `jobs.jobs_frame()`; dashed lines mark p50 and p95.

    Example:
        >>> from copythat_ops import jobs
        >>> duration_chart(jobs.jobs_frame(status="completed")).axes[0].get_xscale()
        'log'
    """
    fig, (ax,) = figure(f"Job durations by {by}", size=(10, 4))
    seconds = frame["duration"].dt.total_seconds()
    finished = frame.assign(seconds=seconds)[seconds > 0]
    if finished.empty:
        note_empty(ax, "no finished jobs")
        return fig
    edges = np.logspace(np.log10(finished["seconds"].min()), np.log10(finished["seconds"].max()), bins)
    colors = [PALETTE["primary"], PALETTE["secondary"], PALETTE["tertiary"], PALETTE["crit"], PALETTE["warn"], PALETTE["muted"]]
    for (name, group), color in zip(finished.groupby(by, observed=True), colors * 4):
        ax.hist(group["seconds"], bins=edges, histtype="step", linewidth=1.4, color=color, label=f"{name} (n={len(group):,})")
        for quantile in (0.5, 0.95):
            ax.axvline(group["seconds"].quantile(quantile), color=color, linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds from created to completed (dashed: p50, p95)")
    ax.set_ylabel("jobs")
    ax.legend(loc="upper right", frameon=False)
    return fig


def _step_label(step: pd.Timedelta) -> str:
    """'6 h', '15 min', '1 day' for a bucket size; 'bucket' when unknown."""
    if pd.isna(step):
        return "bucket"
    seconds = int(step.total_seconds())
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return str(step)


def rehearsal_chart(report: pd.DataFrame) -> Figure:
    """Return bars of each revision's seconds in a rehearsal (`migrations.rehearse()`), failed ones in the critical colour.

    Example:
        >>> frame = pd.DataFrame({"revision": ["a1", "b2"], "seconds": [0.5, 1.5], "error": [None, "boom"]})
        >>> [float(round(p.get_width(), 1)) for p in rehearsal_chart(frame).axes[0].patches]
        [0.5, 1.5]
    """
    fig, (ax,) = figure("Rehearsal: seconds per revision", size=(7, 0.5 + 0.45 * max(len(report), 2)))
    if report.empty:
        note_empty(ax, "nothing was rehearsed")
        return fig
    failed = report["error"].notna() & report["error"].astype(str).ne("")
    colors = [PALETTE["crit"] if bad else PALETTE["ok"] for bad in failed]
    bars = ax.barh(report["revision"].astype(str).tolist(), pd.to_numeric(report["seconds"]).to_numpy(), color=colors)
    ax.bar_label(bars, labels=[f"{s:.2f} s" + (" (failed)" if bad else "") for s, bad in zip(report["seconds"], failed)], padding=3)
    ax.invert_yaxis()  # the first revision applied on top
    ax.set_xlabel("seconds on the copy")
    return fig


def connections_over_time_chart(frame: pd.DataFrame) -> Figure:
    """Return stacked areas of connections by state at each captured snapshot, from `monitor.connection_history()`.

    Example:
        >>> from copythat_ops import monitor
        >>> connections_over_time_chart(monitor.connection_history()).get_suptitle()
        'Connections over time'
    """
    fig, (ax,) = figure("Connections over time", size=(10, 4))
    if frame.empty:
        note_empty(ax, "no history captured yet")
        return fig
    wide = frame.pivot_table(index="bucket", columns="state", values="connections", aggfunc="sum", fill_value=0).sort_index()
    colors = [PALETTE["primary"], PALETTE["secondary"], PALETTE["crit"], PALETTE["tertiary"], PALETTE["muted"], PALETTE["warn"]]
    ax.stackplot(wide.index, *[wide[c].to_numpy() for c in wide.columns], labels=list(wide.columns), colors=colors[: len(wide.columns)] * 2, alpha=0.85)
    ax.set_ylabel("connections")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def table_growth_chart(frame: pd.DataFrame) -> Figure:
    """Return one line per table of its total size at each snapshot, from `monitor.size_history()`.

    Example:
        >>> from copythat_ops import monitor
        >>> table_growth_chart(monitor.size_history()).get_suptitle()
        'Largest tables over time'
    """
    fig, (ax,) = figure("Largest tables over time", size=(10, 4))
    if frame.empty:
        note_empty(ax, "no history captured yet")
        return fig
    colors = [PALETTE["primary"], PALETTE["secondary"], PALETTE["tertiary"], PALETTE["crit"], PALETTE["warn"], PALETTE["muted"]]
    for (table, group), color in zip(frame.groupby("table", sort=False), colors * 4):
        ax.plot(group["bucket"], group["total_bytes"], label=table, color=color, linewidth=1.4)
    bytes_axis(ax, "y")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def sequence_forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame, *, top: int = 3, horizon_days: float = 365) -> Figure:
    """Return the % of its column type's maximum each of the `top` soonest-running-out sequences has used, with its forecast line (dashed) up to `horizon_days` ahead.

    From `monitor.sequence_history()` and `monitor.sequence_forecast()`; the
    legend gives each sequence's date of running out (or "beyond" the horizon).

    Example:
        >>> import pandas as pd
        >>> sequence_forecast_chart(pd.DataFrame(), pd.DataFrame()).get_suptitle()
        'Sequences: % of the column type used, and forecast'
    """
    fig, (ax,) = figure("Sequences: % of the column type used, and forecast", size=(10, 4))
    if history.empty or forecast.empty:
        note_empty(ax, "no forecast yet: capture history first")
        return fig
    chosen = forecast.dropna(subset=["ids_per_day"]).head(top)
    colors = [PALETTE["primary"], PALETTE["secondary"], PALETTE["tertiary"], PALETTE["crit"]]
    for row, color in zip(chosen.itertuples(), colors * 4):
        past = history[(history["schema"] == row.schema) & (history["sequence"] == row.sequence)]
        if past.empty:
            continue
        last = past["bucket"].max()
        days = min(horizon_days, row.days_left) if pd.notna(row.days_left) else horizon_days
        end = last + pd.Timedelta(days=float(days))
        ahead = 100 * (float(row.last_value) + row.ids_per_day * float(days)) / float(row.max_value)
        when = f"runs out {row.runs_out_on}" if pd.notna(row.runs_out_on) and days < horizon_days else f"not within {horizon_days:g} days"
        ax.plot(past["bucket"], past["percent_used"], color=color, linewidth=1.4, label=f"{row.sequence} ({when})")
        ax.plot([last, end], [past["percent_used"].iloc[-1], ahead], color=color, linewidth=1.2, linestyle="--")
    if ax.get_ylim()[1] > 50:
        ax.axhline(100, color=PALETTE["crit"], linewidth=0.8)
    ax.set_ylabel("% of the column type's maximum")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def job_band_chart(frame: pd.DataFrame) -> Figure:
    """Return jobs finished per interval (left) and the failure rate against its usual band, unusual intervals marked (right), from `monitor.job_trends()`.

    Example:
        >>> import pandas as pd
        >>> [ax.get_title() for ax in job_band_chart(pd.DataFrame()).axes]
        ['finished per interval', 'failure rate']
    """
    fig, (done, rate) = figure("Job throughput against its usual band", ncols=2, size=(12, 4))
    done.set_title("finished per interval")
    rate.set_title("failure rate")
    if frame.empty:
        note_empty(done, "no history captured yet")
        note_empty(rate, "no history captured yet")
        return fig
    done.plot(frame["bucket"], frame["completed"], color=PALETTE["ok"], linewidth=1.2, label="completed")
    done.plot(frame["bucket"], frame["failed"], color=PALETTE["crit"], linewidth=1.2, label="failed")
    done.set_ylim(bottom=0)
    done.legend(loc="upper left", frameon=False)
    rate.fill_between(frame["bucket"], frame["usual_low"].astype(float), frame["usual_high"].astype(float), color=PALETTE["muted"], alpha=0.25, label="usual range")
    rate.plot(frame["bucket"], frame["failure_rate"], color=PALETTE["primary"], linewidth=1.2, label="failure rate")
    odd = frame[frame["unusual"]]
    rate.scatter(odd["bucket"], odd["failure_rate"], color=PALETTE["crit"], zorder=3, s=18, label="unusual")
    rate.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:.0f} %"))
    rate.set_ylim(bottom=0)
    rate.legend(loc="upper left", frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def query_trend_chart(frame: pd.DataFrame, *, since=None, top: int = 3) -> Figure:
    """Return the mean time per interval of the `top` statements (by total time), a vertical line at `since` (a deploy), from `monitor.query_trends()`.

    Example:
        >>> import pandas as pd
        >>> query_trend_chart(pd.DataFrame()).get_suptitle()
        'Statement mean time'
    """
    fig, (ax,) = figure("Statement mean time", size=(10, 4))
    if frame.empty:
        note_empty(ax, "no statement statistics captured yet")
        return fig
    leaders = frame.groupby("query_id")["total_ms"].sum().nlargest(top).index
    colors = [PALETTE["primary"], PALETTE["secondary"], PALETTE["tertiary"], PALETTE["crit"]]
    for query_id, color in zip(leaders, colors * 4):
        rows = frame[frame["query_id"] == query_id]
        label = " ".join(str(rows["query"].iloc[0] or query_id).split())[:50]
        ax.plot(rows["bucket"], rows["mean_ms"], color=color, linewidth=1.4, label=label)
    if since is not None:
        stamp = pd.Timestamp(since)
        ax.axvline(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp, color=PALETTE["crit"], linestyle="--", linewidth=1, label="deploy")
    ax.set_ylabel("mean ms per call")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.autofmt_xdate()
    return fig


def drill_chart(frame: pd.DataFrame) -> Figure:
    """Return restore drills over time, from `recovery.drills.drills()`: restore seconds (RTO) and the backup's age in hours (RPO), failed drills in red.

    Example:
        >>> frame = pd.DataFrame({"started_at": pd.to_datetime(["2026-11-01", "2026-11-08"], utc=True), "restore_seconds": [4.0, 5.5],
        ...                       "rpo_seconds": [3600.0, 7200.0], "status": ["passed", "failed"]})
        >>> [ax.get_ylabel() for ax in drill_chart(frame).axes]
        ['seconds to restore (RTO)', 'backup age in hours (RPO)']
    """
    fig, axes = figure("Restore drills: recovery time and recovery point", ncols=2, size=(11, 4))
    if frame.empty:
        for ax in axes:
            note_empty(ax, "no drill recorded yet")
        return fig
    frame = frame.sort_values("started_at")
    when = pd.to_datetime(frame["started_at"], utc=True)
    failed = frame["status"].ne("passed").to_numpy()
    for ax, values, label, title in ((axes[0], pd.to_numeric(frame["restore_seconds"]), "seconds to restore (RTO)", "recovery time"),
                                     (axes[1], pd.to_numeric(frame["rpo_seconds"]) / 3600, "backup age in hours (RPO)", "recovery point")):  # fmt: skip
        ax.set_title(title)
        ax.plot(when, values.to_numpy(), color=PALETTE["primary"], marker="o", label="passed")
        if failed.any():
            ax.scatter(when[failed], values.to_numpy()[failed], color=PALETTE["crit"], zorder=3, label="failed")
            ax.legend(loc="upper left", frameon=False, fontsize="small")
        ax.set_ylabel(label)
        ax.set_xlabel("drill")
        ax.set_ylim(bottom=0)
    fig.autofmt_xdate()
    return fig
