"""The demo's three reports as PDFs, for a person to look at: ``make sample-reports``.

``python -m runreview.reports.samples --out DIR`` builds the demo workspace on its fixed
timeline in a temporary folder and writes ``report-weekly.pdf``, ``report-stakeholder.pdf``
and ``report-audit.pdf`` into ``DIR``, dated at the end of the timeline (the same reports
the tests check).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from runreview.reports.options import KINDS, ReportOptions

DEFAULT_OUT = Path("test-artifacts")


def write_samples(out: Path) -> list[Path]:
    """Build the demo in a temporary folder and write one report of each kind into ``out``."""
    from runreview.demo import DEFAULT_NOW, build_demo
    from runreview.reports.build import write_report
    from runreview.workspace import Workspace

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="runreview-samples-") as folder:
        demo = build_demo(Path(folder) / "demo", now=DEFAULT_NOW)
        ws = Workspace.open([demo.tracking_uri], [str(demo.logdir)])
        try:
            for kind in KINDS:
                target = out / f"report-{kind}.pdf"
                options = ReportOptions(kind=kind, now=DEFAULT_NOW)
                ws.checked(lambda w, o=options, t=target: write_report(w, o, t))
                written.append(target)
        finally:
            ws.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Write the sample reports; prints where they are."""
    parser = argparse.ArgumentParser(prog="python -m runreview.reports.samples")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PDFs")
    args = parser.parse_args(argv)
    for path in write_samples(args.out):
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
