"""Environment diff: N runs side by side (python, platform, CUDA, GPU, git, packages)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from runreview.analysis.envdiff import env_diff
from runreview.app import common, loaders, selection, urlparams
from runreview.contract import ENV_GIT_DIFF, Environment, encode_run_key, encoded_run_keys


def as_text(value: object) -> str:
    """A cell's text: JSON for lists and dicts, empty for missing."""
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else str(value)


def text_table(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` as text (mixed JSON values cannot go to Arrow as they are)."""
    out = frame.copy()
    for column in columns:
        out[column] = out[column].map(as_text)
    return out


scope = common.open_scope("Environment diff")
keys, _ = common.run_choice(scope, common.current_metric(scope), default_count=3)
show_all = selection.widget(urlparams.ENV_ALL, st.toggle, "Show identical rows too")

envs: list[Environment] = []
for key in keys:
    try:
        envs.append(loaders.load_environment(scope.config, *key))
    except Exception as error:
        common.show_error(f"Run {scope.label(key)}", error)
if not envs:
    st.warning("No environment could be read for the chosen runs.")
    st.stop()
empty = [scope.label((e.source_uri, e.run_id)) for e in envs if e.is_empty()]
if empty:
    st.info(common.safe_md(f"Nothing recorded for: {', '.join(empty)}"))
names = dict(zip(encoded_run_keys(scope.runs), scope.runs["run_name"], strict=True))
run_names = [names.get(encode_run_key((e.source_uri, e.run_id)), e.run_id) for e in envs]
result = env_diff(envs, only_differences=not show_all, names=run_names)

legend = pd.DataFrame(
    {
        "column": result.labels,
        "run": [scope.label(k) for k in result.runs],
        "baseline": [i == 0 for i in range(len(result.labels))],
    }
)
st.dataframe(legend, hide_index=True, width="stretch")

if result.summaries:
    st.subheader("Against the baseline")
    summary = pd.DataFrame(
        {"run": list(result.summaries), "differences": list(result.summaries.values())}
    )
    st.dataframe(summary, hide_index=True, width="stretch")

st.subheader("Python, platform, CUDA, GPU, git")
values = result.table[result.table["key"] != ENV_GIT_DIFF]
if values.empty:
    st.success(
        "No differences: every run has the same python, platform, CUDA, GPU and git values"
        + (f" ({result.hidden_rows} identical row(s) hidden)." if result.hidden_rows else ".")
    )
else:
    st.dataframe(text_table(values, result.labels), hide_index=True, width="stretch")
    if result.hidden_rows:
        st.caption(f"{result.hidden_rows} identical row(s) hidden.")
    with st.expander("Where each value came from"):
        origins = result.origins[result.origins["key"] != ENV_GIT_DIFF]
        st.dataframe(text_table(origins, result.labels), hide_index=True, width="stretch")

st.subheader("Packages")
if not any(e.packages for e in envs):
    st.info("No run recorded its packages.")
elif result.packages.empty:
    st.success(
        f"No differences: all {result.hidden_packages} package(s) have the same version "
        "in every run."
    )
else:
    if result.hidden_packages:
        st.caption(f"{result.hidden_packages} package(s) with the same version everywhere hidden.")
    if result.package_changes:
        labels = [common.safe_md(f"{label} vs baseline") for label in result.package_changes]
        for tab, changes in zip(st.tabs(labels), result.package_changes.values(), strict=True):
            shown = changes if show_all else changes[changes["change"] != "unchanged"]
            if shown.empty:
                tab.success("No differences from the baseline's packages.")
                continue
            counts = shown.groupby(["change", "severity"]).size().rename("packages")
            tab.dataframe(counts.reset_index(), hide_index=True)
            tab.dataframe(
                text_table(shown, ["version_a", "version_b"]), hide_index=True, width="stretch"
            )
    with st.expander("All runs side by side"):
        st.dataframe(text_table(result.packages, result.labels), hide_index=True, width="stretch")

st.subheader("Uncommitted changes (git diff)")
diffs = [(label, env.get(ENV_GIT_DIFF)) for label, env in zip(result.labels, envs, strict=True)]
diffs = [(label, diff) for label, diff in diffs if diff]
if not diffs:
    st.caption("No run recorded a git diff.")
for label, diff in diffs:
    st.text(label)
    st.code(str(diff), language="diff")
