"""Requests the CLI must refuse (issue #12): an unknown name, an unreadable date, an
unwritable ``--out``, a file that is not a PDF. Each is exit 2 and one line on stderr that
names the option and what is valid; nothing is written and no store is read in vain."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from tensorboardX import SummaryWriter

from runreview.cli import build_parser, main
from tests.conftest import DEMO_NOW
from tests.reliability import fsfaults

NOW = ["--now", DEMO_NOW.isoformat()]
CLASS_NAMES = ("Error:", "Exception", "Traceback")


def demo_sources(demo) -> list[str]:
    return ["--tracking-uri", demo.tracking_uri, "--logdir", str(demo.logdir)]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``runreview argv`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    """The single ``runreview: error:`` line of ``err`` (and nothing else on stderr)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("runreview: error: "), err
    assert not any(name in lines[0] for name in CLASS_NAMES), err
    return lines[0].removeprefix("runreview: error: ")


def report(demo, out: Path, *extra: str) -> list[str]:
    return ["report", "--template", "weekly", *demo_sources(demo), *NOW, "--out", str(out), *extra]


# --- 1. unknown names -------------------------------------------------------------------


def test_report_with_an_unknown_metric_is_refused_and_writes_nothing(
    demo_workspace, tmp_path, capsys
):
    out = tmp_path / "r.pdf"
    code, stdout, err = run(capsys, *report(demo_workspace, out, "--metric", "val_acc"))
    assert code == 2
    message = one_error_line(err)
    assert message.startswith("--metric: no metric 'val_acc' in the selected runs; ")
    assert "did you mean val_accuracy?" in message
    assert "(available: train_loss, val_accuracy, val_f1, val_loss)" in message
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--experiment", "wine-mpl"],
            "--experiment: no experiment 'wine-mpl' with runs in the sources; "
            "did you mean wine-mlp?",
        ),
        (["--run", "0123456789abcdef"], "--run: no run id '0123456789abcdef' in the sources"),
        (
            ["--filter", "params.modle = 'mlp'"],
            "--filter: no parameter column 'params.modle' in the selected runs; "
            "did you mean params.model?",
        ),
        (
            ["--experiment", "wine-mlp", "--metric", "val_los"],
            "--metric: no metric 'val_los' in the selected runs; did you mean val_loss?",
        ),
    ],
)
def test_report_names_are_checked(demo_workspace, tmp_path, capsys, extra, expected):
    out = tmp_path / "r.pdf"
    code, _, err = run(capsys, *report(demo_workspace, out, *extra))
    assert code == 2
    assert one_error_line(err).startswith(expected)
    assert not out.exists()


def test_a_run_name_given_to_run_is_answered_with_its_id(demo_workspace, tmp_path, capsys):
    code, stdout, _ = run(
        capsys, "runs", "--tracking-uri", demo_workspace.tracking_uri, "--format", "csv"
    )
    runs = pd.read_csv(io.StringIO(stdout), dtype=str, keep_default_na=False)
    unique = runs[~runs["run_name"].duplicated(keep=False)].iloc[0]
    name, run_id = unique["run_name"], unique["run_id"]
    for argv in (
        ["history", "--tracking-uri", demo_workspace.tracking_uri, "--run", name],
        report(demo_workspace, tmp_path / "r.pdf", "--run", name),
    ):
        code, stdout, err = run(capsys, *argv)
        assert code == 2
        message = one_error_line(err)
        assert f"no run id {name!r}" in message
        assert f"is a run name, --run takes run ids; did you mean {run_id}?" in message
        assert stdout == ""


def test_history_with_an_unknown_metric_is_refused(demo_workspace, capsys):
    code, stdout, err = run(capsys, "history", *demo_sources(demo_workspace), "--metric", "val/los")
    assert code == 2
    assert stdout == ""  # not a CSV header with no rows
    message = one_error_line(err)
    assert message.startswith("--metric: no metric 'val/los' in the selected runs; ")
    assert "did you mean val_loss?" in message


def test_history_of_known_names_still_works(demo_workspace, capsys):
    code, stdout, err = run(
        capsys, "history", "--logdir", str(demo_workspace.logdir), "--metric", "val_loss"
    )
    assert code == 0, err
    assert set(pd.read_csv(io.StringIO(stdout))["metric"]) == {"val_loss"}


def test_runs_with_an_unknown_experiment_is_refused_not_an_empty_table(demo_workspace, capsys):
    code, stdout, err = run(
        capsys, "runs", *demo_sources(demo_workspace), "--experiment", "wine-mpl"
    )
    assert code == 2
    assert stdout == ""
    message = one_error_line(err)
    assert message == (
        "--experiment: no experiment 'wine-mpl' with runs in the sources; did you mean "
        f"wine-mlp? (available: {', '.join(sorted(_experiments(demo_workspace, capsys)))})"
    )
    assert "runreview check" not in err  # the old hint led to a command that found nothing


def _experiments(demo, capsys) -> set[str]:
    code, stdout, _ = run(capsys, "runs", *demo_sources(demo), "--format", "json")
    assert code == 0
    return set(pd.read_json(io.StringIO(stdout))["experiment"])


# --- 2. dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--since", "2027-01-01", *NOW],
            "--since 2027-01-01 is after --now 2026-11-20T00:00Z",
        ),
        (
            ["--until", "garbage", *NOW],
            "--until: 'garbage' is not a date; use an ISO-8601 date or time (2026-11-20, "
            "2026-11-20T09:00Z) or a span before --now (7d, 2w, 24h)",
        ),
        (
            ["--now", "yesterday"],
            "--now: 'yesterday' is not a date; use an ISO-8601 date or time (2026-11-20, "
            "2026-11-20T09:00Z)",
        ),
        (["--since", "7mo", *NOW], "--since: '7mo' is not a date; use an ISO-8601"),
        (["--until", "2027-01-01", *NOW], "--until 2027-01-01 is after --now 2026-11-20T00:00Z"),
        (
            ["--since", "2026-11-10", "--until", "2026-11-01", *NOW],
            "--since 2026-11-10 is not before --until 2026-11-01",
        ),
    ],
)
def test_bad_dates_are_refused_before_any_store_is_read(tmp_path, capsys, extra, expected):
    missing_store = f"sqlite:///{tmp_path}/nope.db"  # reading it would be the error instead
    out = tmp_path / "r.pdf"
    argv = ["report", "--template", "weekly", "--tracking-uri", missing_store, "--out", str(out)]
    code, _, err = run(capsys, *argv, *extra)
    assert code == 2
    assert one_error_line(err) == expected or one_error_line(err).startswith(expected)
    assert list(tmp_path.iterdir()) == []


def test_until_takes_a_span_before_now_like_since():
    from runreview.reports.options import ReportOptions

    options = ReportOptions(kind="weekly", now=DEMO_NOW, since="2w", until="1w")
    since, until = options.period()
    assert (until - since).days == 7 and (DEMO_NOW - until).days == 7


def test_demo_with_an_unreadable_now_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--dir", str(tmp_path / "demo"), "--now", "yesterday")
    assert code == 2
    assert one_error_line(err).startswith("--now: 'yesterday' is not a date; use an ISO-8601")
    assert not (tmp_path / "demo").exists()


# --- 3. --out ---------------------------------------------------------------------------


def test_an_out_in_a_missing_folder_is_refused_before_the_stores_are_read(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "r.pdf"
    code, _, err = run(
        capsys, "report", "--template", "audit", "--tracking-uri",
        f"sqlite:///{tmp_path}/nope.db", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    message = one_error_line(err)
    assert message.startswith(f"--out: could not write {out}: folder {out.parent} does not exist")
    assert "nope.db" not in message


def test_an_out_in_a_read_only_folder_is_refused_before_the_stores_are_read(tmp_path, capsys):
    with fsfaults.read_only_folder(tmp_path) as folder:
        if os.access(folder, os.W_OK):
            pytest.skip("this user can write to a mode-0500 folder (root without a mount)")
        out = folder / "r.pdf"
        code, _, err = run(
            capsys, "report", "--template", "audit", "--tracking-uri",
            f"sqlite:///{tmp_path}/nope.db", "--out", str(out),
        )  # fmt: skip
        assert code == 2
        assert (
            one_error_line(err) == f"--out: could not write {out}: folder {folder} is not writable"
        )
        assert list(folder.iterdir()) == []


def test_an_out_that_is_a_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "looks-like.pdf"
    out.mkdir()
    code, _, err = run(
        capsys, "report", "--template", "audit", "--tracking-uri",
        f"sqlite:///{tmp_path}/nope.db", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert one_error_line(err) == f"--out {out} is a folder; give a file name ending in .pdf"


# --- 4. verify --------------------------------------------------------------------------


def test_verify_of_a_file_that_is_not_a_pdf_is_an_error(tmp_path, capfd):
    readme = tmp_path / "README.md"
    readme.write_text("# runreview\n")
    code = main(["verify", str(readme)])
    out = capfd.readouterr()
    assert code == 2
    assert one_error_line(out.err) == f"{readme} is not a PDF"
    assert out.out == ""


def test_verify_of_a_damaged_pdf_is_one_line_without_library_noise(tmp_path, capfd):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    data = io.BytesIO()
    writer.write(data)
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(data.getvalue()[:-60])  # cut before the trailer and %%EOF
    code = main(["verify", str(damaged)])
    out = capfd.readouterr()  # capfd: also what pypdf's logging would print
    assert code == 2
    assert one_error_line(out.err).startswith(f"{damaged} is a damaged PDF: ")
    assert out.out == ""


def test_verify_of_a_missing_file_is_an_error(tmp_path, capsys):
    code, _, err = run(capsys, "verify", str(tmp_path / "gone.pdf"))
    assert code == 2
    assert one_error_line(err) == f"{tmp_path / 'gone.pdf'} does not exist"


# --- 5. no internal class names -----------------------------------------------------------


def test_a_filter_that_cannot_be_parsed_is_one_line_without_a_class_name(tmp_path, capsys):
    code, _, err = run(
        capsys, "report", "--template", "audit", "--tracking-uri",
        f"sqlite:///{tmp_path}/nope.db", "--filter", "params.model = ", "--out",
        str(tmp_path / "r.pdf"),
    )  # fmt: skip
    assert code == 2
    assert one_error_line(err).startswith("--filter: Invalid filter at character 16: expected")


def test_an_unexpected_error_prints_only_its_message(capsys, monkeypatch):
    monkeypatch.setenv("RUNREVIEW_HTTP_TIMEOUT", "abc")
    code, _, err = run(capsys, "runs", "--tracking-uri", "http://127.0.0.1:9")
    assert code == 2
    assert one_error_line(err) == "RUNREVIEW_HTTP_TIMEOUT='abc' is not a number of seconds"


@pytest.mark.parametrize("top", ["0", "-3", "five"])
def test_top_must_be_at_least_one(tmp_path, capsys, top):
    code, _, err = run(
        capsys, "report", "--template", "weekly", "--top", top, "--out", str(tmp_path / "r.pdf")
    )
    assert code == 2
    assert f"argument --top: {top!r} is not a whole number of 1 or more" in err
    assert "top_n" not in err and "ValueError" not in err


# --- 6. hints lead somewhere --------------------------------------------------------------


def _logdir(tmp_path: Path) -> Path:
    logdir = tmp_path / "logs"
    with SummaryWriter(str(logdir / "run-a")) as writer:
        for step in range(20):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    return logdir


def test_a_note_that_check_would_not_list_gives_no_check_hint(demo_workspace, tmp_path, capsys):
    # The MLflow store has no experiment "logs" (a note, not a problem): `runreview check`
    # would list nothing, so no hint may point there.
    logdir = _logdir(tmp_path)
    code, stdout, err = run(
        capsys, "runs", "--tracking-uri", demo_workspace.tracking_uri, "--logdir", str(logdir),
        "--experiment", "logs", "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(stdout))) == 1
    assert "runreview check" not in err


def test_the_check_hint_leads_to_a_check_that_lists_the_problems(tmp_path, capsys):
    logdir = _logdir(tmp_path)
    path = next((logdir / "run-a").glob("*tfevents*"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "history", "--logdir", str(logdir), "--run", "run-a")
    assert code == 0
    assert "`runreview check` with the same sources lists them" in err
    code, stdout, _ = run(capsys, "check", "--logdir", str(logdir))
    assert code == 1
    assert str(path) in stdout


def test_the_demo_hints_are_commands_that_work(demo_workspace, tmp_path, capsys):
    code, _, err = run(capsys, "runs")
    assert code == 2 and "`runreview demo` builds one" in err
    # A complete demo: --if-missing keeps it (the hint's other way, --force, rebuilds it).
    folder = str(demo_workspace.directory)
    code, _, err = run(capsys, "demo", "--dir", folder, "--now", "2026-11-20")
    message = one_error_line(err)
    assert code == 2 and "pass --force to rebuild it, or --if-missing" in message
    assert "overwrite=True" not in message
    code, stdout, _ = run(capsys, "demo", "--dir", folder, "--if-missing")
    assert code == 0 and "already built" in stdout
    # Not a demo: --force would be refused too, so it is not suggested.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    for force in ([], ["--force"]):
        code, _, err = run(capsys, "demo", "--dir", str(other), *force)
        message = one_error_line(err)
        assert code == 2 and "--force" not in message and "choose a new or empty folder" in message
    assert (other / "notes.txt").read_text() == "keep me"


# --- 7. --help --------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name)


def test_every_subcommand_and_option_has_help():
    parser = build_parser()
    assert parser.description
    found = list(_subparsers(parser))
    assert {"runs", "history", "check", "demo", "app", "report", "verify"} <= {n for n, *_ in found}
    for name, sub, summary in found:
        assert summary and summary.strip(), f"{name} has no help line in `runreview --help`"
        assert sub.description and sub.description.strip(), f"{name} has no description"
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"runreview {name} {flag} has no help"
            default = action.default
            if default not in (None, False, argparse.SUPPRESS) and not action.required:
                assert "default" in action.help, f"runreview {name} {flag}: say the default"
        sub.format_help()  # every %(default)s expands


# --- 8. file mode -----------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_report_file_gets_the_users_umask(tmp_path, umask, mode):
    target = tmp_path / "r.pdf"
    code = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from runreview.reports.pdf import write_atomically
        os.umask({umask})
        write_atomically(b"%PDF-1.7 test", Path({str(target)!r}))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert target.stat().st_mode & 0o777 == mode
    assert target.read_bytes() == b"%PDF-1.7 test"
