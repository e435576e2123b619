"""HTML from a report's context: Jinja2 with autoescape and StrictUndefined, no JavaScript.

Store data is only ever passed as values to a fixed template, never compiled as one, so
template syntax inside a run name is printed literally.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from runreview import __version__
from runreview.reports.text import clean_text


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The Jinja2 environment for the packaged report templates."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("runreview.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The print stylesheet (trusted: shipped with the package)."""
    return (
        resources.files("runreview.reports")
        .joinpath("templates/report.css")
        .read_text(encoding="utf-8")
    )


def chart_svg(chart: Any) -> str:
    """An Altair chart as SVG, offline (a chart that points at a URL fails loudly).

    Text in the chart (run names in legends and tooltips) is cleaned like table cells first:
    vl-convert aborts the whole process, uncatchably, on a NUL character in its data.
    """
    import vl_convert

    return vl_convert.vegalite_to_svg(_clean_strings(chart.to_dict()), allowed_base_urls=[])


def _clean_strings(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {k: _clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(v) for v in value]
    return value


def svg_data_uri(svg: str) -> str:
    """An SVG as a ``data:`` URI (the only kind of URL the PDF renderer accepts)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def render_html(kind: str, context: dict[str, Any], chart_svgs: dict[str, str]) -> str:
    """The report's HTML."""
    template = template_environment().get_template(f"{kind}.html")
    values = dict(context)
    values.update(
        css=Markup(stylesheet()),  # noqa: S704 - our own packaged CSS
        version=__version__,
        description=f"runreview {kind} report {context.get('report_id', '')}",
        chart_uris={name: svg_data_uri(svg) for name, svg in chart_svgs.items()},
    )
    return template.render(**values)
