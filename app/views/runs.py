"""Runs: the unified table of every source, filtered, with the run selection and CSV."""

from __future__ import annotations

import streamlit as st

from runreview.analysis.columns import GROUPS, csv_bytes, select_columns
from runreview.analysis.filtering import FilterError, filter_runs
from runreview.app import common, errors, selection, urlparams
from runreview.contract import encoded_run_keys

TABLE_KEY = "runs.table"
VISIBLE_KEY = "_runs_visible"  # run keys of the table's rows, in order, as last shown
RENDERED_KEY = "_runs_rendered"  # run keys shown selected in the table last time


def _reconcile_selection() -> list[str]:
    """The shared run selection, updated with a row selection made in the table.

    The table's state holds row positions in the table as last shown; a change is a
    state that differs from what was shown selected. Runs selected elsewhere (other
    pages, buttons) and runs the filter hides keep their selection.
    """
    selected = selection.get(urlparams.RUNS)
    previous = st.session_state.get(VISIBLE_KEY)
    table_state = st.session_state.get(TABLE_KEY)
    if previous is None or not table_state:
        return selected
    rows = table_state.get("selection", {}).get("rows", [])
    picked = [previous[i] for i in rows if 0 <= i < len(previous)]
    if set(picked) == set(st.session_state.get(RENDERED_KEY, [])):
        return selected
    hidden = [k for k in selected if k not in set(previous)]
    selection.put(urlparams.RUNS, hidden + picked)
    return selection.get(urlparams.RUNS)


@errors.guarded_callback("callback select runs")
def _select(keys: list[str]) -> None:
    """Callback of the selection buttons."""
    selection.put(urlparams.RUNS, keys)


scope = common.open_scope("Runs")
expression = selection.widget(
    urlparams.FILTER,
    st.text_input,
    "Filter (MLflow search syntax)",
    placeholder="metrics.val_accuracy > 0.9 and params.model = 'rf'",
    help="Works for TensorBoard runs too: hparams are params, scalar tags are metrics.",
)
try:
    unknown = common.unknown_filter_columns(scope.runs, expression)
    shown = scope.runs if unknown else filter_runs(scope.runs, expression)
except FilterError as error:
    common.show_error("Filter not applied", error)
    st.code(error.pointer, language=None)
    shown = scope.runs
else:
    for problem in unknown:  # an empty table would only hide the typo
        st.error(common.safe_md(f"Filter not applied: {problem}"))

left, right = st.columns([3, 1])
groups = selection.widget(
    urlparams.COLUMNS,
    left.multiselect,
    "Column groups",
    options=list(GROUPS),
    placeholder="Run columns only",
)
differing = selection.widget(urlparams.DIFFERING, right.toggle, "Only columns that differ")
columns = select_columns(shown, groups, only_differing=differing)
table = shown[columns].reset_index(drop=True)
visible = list(encoded_run_keys(shown))

selected = _reconcile_selection()
chosen = set(selected)
rows = [i for i, k in enumerate(visible) if k in chosen]
st.session_state[VISIBLE_KEY] = visible
st.session_state[RENDERED_KEY] = [visible[i] for i in rows]
st.session_state[TABLE_KEY] = {"selection": {"rows": rows, "columns": []}}
st.caption(
    f"{len(shown)} of {len(scope.runs)} runs, {len(columns)} columns. "
    "Select rows to compare them on the other pages."
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config=common.number_config(table),
    key=TABLE_KEY,
    on_select="rerun",
    selection_mode="multi-row",
)

hidden = [k for k in selected if k not in set(visible)]
note = f"{len(selected)} run(s) selected"
if hidden:
    note += f" ({len(hidden)} hidden by the filter)"
actions = st.columns([2, 1, 1, 1])
actions[0].caption(note)
actions[1].button(
    "Select all shown", on_click=_select, args=(list(dict.fromkeys(selected + visible)),)
)
actions[2].button("Clear selection", on_click=_select, args=([],), disabled=not selected)
actions[3].download_button(
    "Download CSV",
    data=csv_bytes(table),
    file_name="runs.csv",
    mime="text/csv",
    help="The table as shown: filter and columns applied.",
)
