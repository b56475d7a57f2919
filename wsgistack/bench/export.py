"""The report's documents: report.md and report.html, from report.build_context.

The prose lives in templates/report.md.j2 (Jinja2), rendered twice: for
report.md with the charts as files, for report.html with the charts inlined
as data: URIs, then turned into HTML by markdown-it and wrapped in
templates/report.html.j2: one self-contained file.
"""

from __future__ import annotations

import base64
from pathlib import Path

from wsgistack.bench import charts
from wsgistack.bench.repeats import rate
from wsgistack.bench.results import num

TEMPLATES = Path(__file__).with_name("templates")


def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = num
    env.filters["rate"] = rate
    env.filters["pxt"] = lambda pxt, stack="": charts.concurrency_label(stack, pxt)
    return env


def write_documents(out_dir: Path, context: dict, drawn: dict[str, Path], lead: str = "") -> None:
    """report.md (charts linked) and report.html (charts inlined). ``lead``:
    Markdown put first, a template in which ``chart_url("name")`` is a chart's
    address."""
    from markdown_it import MarkdownIt

    env = environment()
    template = env.get_template("report.md.j2")

    def as_file(name: str) -> str:
        return f"charts/{drawn[name].name}"

    def as_data(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode(drawn[name].read_bytes()).decode()

    def render(chart_url) -> str:
        first = env.from_string(lead).render(chart_url=chart_url) if lead else ""
        return template.render(context, charts=drawn, chart_url=chart_url, lead=first)

    (out_dir / "report.md").write_text(render(as_file), encoding="utf-8")
    body = MarkdownIt("commonmark").enable("table").render(render(as_data))
    html = env.get_template("report.html.j2").render(title=context["title"], body=body)
    (out_dir / "report.html").write_text(html, encoding="utf-8")
