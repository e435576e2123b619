"""What a report is asked to show: kind, scope, period, metric. Pure and serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from runreview.analysis.periods import parse_since, to_utc

Kind = Literal["weekly", "stakeholder", "audit"]
KINDS: tuple[str, ...] = ("weekly", "stakeholder", "audit")
TITLES = {
    "weekly": "Weekly experiment review",
    "stakeholder": "Model progress summary",
    "audit": "Compliance audit report",
}


@dataclass(frozen=True)
class ReportOptions:
    """The options of one report; ``now`` fixes every date in it (reproducible output)."""

    kind: str
    now: datetime
    metric: str | None = None
    goal: str | None = None  # "min" / "max"; None = from the metric's name
    since: str | None = "7d"
    until: str | None = None
    experiments: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    filter: str | None = None
    top_n: int = 5
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown report kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.goal not in (None, "min", "max"):
            raise ValueError(f"--goal must be min or max, not {self.goal!r}")
        if self.top_n < 1:
            raise ValueError(f"--top must be 1 or more, not {self.top_n}")

    @property
    def now_utc(self) -> datetime:
        """``now`` in UTC (a naive time is taken as UTC)."""
        return to_utc(self.now)

    def period(self) -> tuple[datetime | None, datetime]:
        """(since, until) in UTC; since is None when the report covers all time.

        ``until`` is a date or a span before ``now`` (``1d``), as ``since`` is."""
        if not self.until:
            until = self.now_utc
        elif isinstance(self.until, str):
            until = parse_since(self.until, self.now_utc)
        else:
            until = to_utc(self.until)
        since = parse_since(self.since, self.now_utc) if self.since else None
        return since, until

    def display_title(self) -> str:
        """The title printed on the report."""
        return self.title or TITLES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form for the manifest."""
        data = asdict(self)
        data["now"] = iso(self.now_utc)
        data["experiments"] = list(self.experiments)
        data["run_ids"] = list(self.run_ids)
        return data


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, seconds precision."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
