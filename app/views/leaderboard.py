"""Leaderboard: runs ranked by a metric, best per group, and the rank change since a date."""

from __future__ import annotations

from datetime import date

import streamlit as st

from runreview import charts
from runreview.analysis.leaderboard import leaderboard, metric_direction, rank_change
from runreview.app import common, loaders, selection, urlparams
from runreview.contract import encoded_run_keys

BOARD_COLUMNS = [
    "rank", "run_name", "experiment", "source", "value", "finite", "best_value", "best_step",
    "last_value", "last_step", "history_points", "run_id",
]  # fmt: skip
CHANGE_COLUMNS = [
    "rank_now", "rank_before", "change", "status", "period", "run_name", "experiment",
    "value_now", "value_before", "run_id",
]  # fmt: skip
MODES = {"best": "Best value over all steps", "last": "Last value"}


def _to_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


scope = common.open_scope("Leaderboard")
metric = common.metric_choice(scope)
if metric is None:
    st.stop()
auto = metric_direction(metric)
directions = {"auto": f"Automatic ({'lower' if auto == 'min' else 'higher'} is better)"}
directions |= {"min": "Lower is better", "max": "Higher is better"}

left, mid, right = st.columns(3)
direction_choice = selection.widget(
    urlparams.LB_DIRECTION,
    left.radio,
    "Direction",
    options=list(directions),
    format_func=directions.get,
)
mode = selection.widget(
    urlparams.LB_MODE, mid.radio, "Score", options=list(MODES), format_func=MODES.get
)
top_n = selection.widget(urlparams.LB_TOP, right.number_input, "Top N", min_value=1, max_value=1000)
params = common.param_names(scope.runs)
group = selection.widget(
    urlparams.LB_GROUP,
    left.selectbox,
    "Best run per value of",
    options=["", *params],
    format_func=lambda p: p or "(no grouping)",
)
only_selected = selection.widget(urlparams.LB_SELECTED, mid.toggle, "Only the selected runs")
split = selection.widget(
    urlparams.LB_SPLIT,
    right.date_input,
    "Rank change since (runs started before vs after)",
    to_widget=_to_date,
    from_widget=lambda d: d.isoformat() if d else "",
    help="Leave empty to skip; the ranking before uses only points logged before the date.",
)

runs = scope.runs
selected = set(selection.get(urlparams.RUNS))
if only_selected:
    keys = list(encoded_run_keys(runs))
    runs = runs[[k in selected for k in keys]].reset_index(drop=True)
    if runs.empty:
        st.info("No runs selected: select runs on the Runs page, or switch off the toggle.")
        st.stop()
direction = None if direction_choice == "auto" else direction_choice
with st.spinner("Reading history ..."):
    history = loaders.load_history(scope.config, [metric], sorted(set(runs["run_id"])))

board = leaderboard(
    runs, history, metric, direction, mode, top_n=int(top_n), group_by=group or None
)
st.caption(common.safe_md(board.attrs["description"]))
shown = [*(["group", "group_runs"] if group else []), *BOARD_COLUMNS]
st.dataframe(board[shown], hide_index=True, width="stretch")
if not board.empty:
    common.show_chart(charts.leaderboard_chart(board, metric))
unscored = int((~board["finite"]).sum())
if unscored:
    st.warning(f"{unscored} run(s) have no finite value of this metric and rank last.")

if split:
    st.subheader("Rank change")
    change = rank_change(runs, history, metric, direction, split.isoformat(), mode)
    counts = change["status"].value_counts()
    st.caption(
        f"Ranks of runs started before {split.isoformat()} (points logged before it) "
        f"against all runs now: {counts.get('up', 0)} up, {counts.get('down', 0)} down, "
        f"{counts.get('same', 0)} same, {counts.get('new', 0)} new."
    )
    st.dataframe(change[CHANGE_COLUMNS], hide_index=True, width="stretch")
