"""What every page shares: the runs in scope, run and metric pickers, safe text, errors.

Store data (run names, tags, params, metric names, file paths, error messages built from
them) is untrusted: it is shown through ``st.dataframe``, ``st.text``, ``st.code``, chart
text, widget options (plain text), or markdown after :func:`safe_md`. Never with
``unsafe_allow_html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from runreview.analysis.columns import unit_interval_columns
from runreview.analysis.filtering import parse_filter
from runreview.analysis.leaderboard import choose_metric, leaderboard
from runreview.analysis.names import close_columns
from runreview.analysis.runlabels import distinct_labels
from runreview.analysis.summary import findings_table, severity_counts
from runreview.app import loaders, selection, sourceconfig, urlparams
from runreview.app.markdown import safe_md
from runreview.contract import (
    METRIC_PREFIX,
    PARAM_PREFIX,
    Finding,
    RunKey,
    decode_run_key,
    empty_history,
    encode_run_key,
    encoded_run_keys,
    run_keys,
)


@dataclass
class Scope:
    """The sources switched on and their runs in the chosen experiments."""

    config: sourceconfig.SourceConfig
    runs: pd.DataFrame
    labels: dict[str, str]  # run key -> display label

    @property
    def keys(self) -> list[str]:
        """Run keys in runs-frame order."""
        return list(self.labels)

    def label(self, key: RunKey | str) -> str:
        """The display label of a run."""
        text = key if isinstance(key, str) else encode_run_key(key)
        return self.labels.get(text, text)


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Run key -> ``name · source``, with a short id after names that repeat (unique)."""
    names = distinct_labels(runs["run_name"].tolist(), runs["run_id"].tolist())
    return {
        key: f"{name} · {source}"
        for key, name, source in zip(encoded_run_keys(runs), names, runs["source"], strict=True)
    }


def open_scope(title: str, *, require_runs: bool = True) -> Scope:
    """Title the page, read the runs of the active sources in the chosen experiments.

    Stops the page with a message when there is nothing to show.
    """
    st.title(title)
    config = sourceconfig.active_sources()
    if config.is_empty():
        st.info("No source is switched on. Choose sources in the sidebar.")
        st.stop()
    with st.spinner("Reading runs ..."):
        runs = loaders.load_runs(config)
    experiments = selection.get(urlparams.EXPERIMENTS)
    if experiments:
        runs = runs[runs["experiment"].isin(experiments)]
    runs = runs.reset_index(drop=True)
    if require_runs and runs.empty:
        st.info("No runs in the chosen sources and experiments.")
        show_open_errors(loaders.source_errors(config))
        st.stop()
    return Scope(config, runs, run_labels(runs))


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Metric names (without ``metrics.``) of the runs frame, sorted."""
    return sorted(
        c.removeprefix(METRIC_PREFIX) for c in runs.columns if c.startswith(METRIC_PREFIX)
    )


def param_names(runs: pd.DataFrame) -> list[str]:
    """Param names (without ``params.``) that at least one run has, sorted."""
    return sorted(
        c.removeprefix(PARAM_PREFIX)
        for c in runs.columns
        if c.startswith(PARAM_PREFIX) and runs[c].notna().any()
    )


def current_metric(scope: Scope) -> str | None:
    """The selected metric when the runs have it, else the best-covered one."""
    names = metric_names(scope.runs)
    chosen = selection.get(urlparams.METRIC)
    return chosen if chosen in names else choose_metric(scope.runs)


def metric_choice(scope: Scope, label: str = "Metric", container=st) -> str | None:
    """A metric picker bound to the ``metric`` param; None (with a note) without metrics."""
    names = metric_names(scope.runs)
    if not names:
        st.info("The runs in scope logged no metric.")
        return None
    return selection.widget(
        urlparams.METRIC, container.selectbox, label, options=names, fallback=current_metric(scope)
    )


def best_runs(runs: pd.DataFrame, metric: str | None, count: int) -> list[RunKey]:
    """The ``count`` best runs by the last value of ``metric`` (the first runs without one)."""
    if not metric:
        return run_keys(runs)[:count]
    board = leaderboard(runs, empty_history(), metric, mode="last", top_n=None)
    return run_keys(board)[:count]


def run_choice(
    scope: Scope,
    metric: str | None,
    *,
    default_count: int | None = 5,
    label: str = "Runs",
) -> tuple[list[RunKey], bool]:
    """A run picker bound to the shared selection; (runs, True when explicitly chosen).

    Without a selection the best ``default_count`` runs by ``metric`` are used (all runs
    when ``default_count`` is None) and the page says so.
    """
    chosen = selection.widget(
        urlparams.RUNS,
        st.multiselect,
        label,
        options=scope.keys,
        format_func=lambda key: scope.labels.get(key, key),
        placeholder="Choose runs (or select them on the Runs page)",
    )
    if chosen:
        return [decode_run_key(k) for k in chosen], True
    if default_count is None:
        st.caption(f"No runs selected: using all {len(scope.keys)} runs in scope.")
        return [decode_run_key(k) for k in scope.keys], False
    keys = best_runs(scope.runs, metric, default_count)
    if keys:
        by = f"by {safe_md(metric)}" if metric else "in table order"
        st.caption(f"No runs selected: showing the best {len(keys)} {by}.")
    return keys, False


def unknown_filter_columns(runs: pd.DataFrame, expression: str) -> list[str]:
    """One sentence per column a filter names that no run in ``runs`` has a value for, with
    the closest names that some run has (``FilterError`` for an invalid filter)."""
    problems = []
    for condition in parse_filter(expression):
        column = condition.column
        if column in runs.columns and runs[column].notna().any():
            continue
        close = close_columns(column, runs) or []
        text = f"no run in scope has {column}"
        if close:
            text += f"; did you mean {' or '.join(close)}?"
        problems.append(text)
    return list(dict.fromkeys(problems))


def show_chart(chart) -> None:
    """Show a chart at the size its builder gave it.

    Streamlit fits charts without an ``autosize`` into their size including axes, legend
    and title, which squeezes small charts (a 3x3 heatmap) to a few pixels; ``pad`` (the
    Vega-Lite default, used by the reports too) keeps the builder's plot size.
    """
    import altair as alt

    padded = chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))
    st.altair_chart(padded, width="content")


def show_error(what: str, exc: BaseException) -> None:
    """An error box naming what failed; the text is escaped (it may hold store data)."""
    st.error(safe_md(f"{what}: {exc}"))


def show_open_errors(problems: Sequence[Finding]) -> None:
    """One error per source that could not be opened or read."""
    for problem in problems:
        st.error(safe_md(f"{problem.source_uri}: {problem.message}"))


def show_findings(findings: Sequence[Finding]) -> None:
    """The data-completeness state and every finding in a table."""
    counts = severity_counts(findings)
    problems = counts.get("error", 0) + counts.get("warning", 0)
    if problems:
        st.warning(
            f"Incomplete: {counts.get('error', 0)} error(s) and {counts.get('warning', 0)} "
            "warning(s) while reading. The items below were skipped or read in part."
        )
    elif findings:
        st.info(f"Complete, with {counts.get('info', 0)} note(s) about what was read.")
    else:
        st.success("Complete: everything in the chosen sources was read.")
    if findings:
        st.dataframe(findings_table(findings), hide_index=True, width="stretch")


def number_config(frame: pd.DataFrame, digits: int = 4) -> dict[str, object]:
    """Column config for a runs-like frame: dates, 0-1 metrics as bars, other numbers."""
    config: dict[str, object] = {}
    unit = set(unit_interval_columns(frame))
    for column in frame.columns:
        if column in ("start_time", "end_time", "first_start", "last_start"):
            config[column] = st.column_config.DatetimeColumn(
                column, format="YYYY-MM-DD HH:mm:ss", timezone="UTC"
            )
        elif column in unit:
            config[column] = st.column_config.ProgressColumn(
                column, min_value=0.0, max_value=1.0, format=f"%.{digits}f"
            )
        elif column.startswith(METRIC_PREFIX):
            config[column] = st.column_config.NumberColumn(column, format=f"%.{digits}g")
    if "run_name" in frame.columns:
        config["run_name"] = st.column_config.TextColumn("run_name", pinned=True)
    return config
