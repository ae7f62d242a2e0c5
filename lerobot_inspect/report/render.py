"""Rendering: a notebook's cell outputs as HTML blocks, and the report's pages around them.

Altair charts become inline SVG (vl-convert), tables HTML, images inline PNG, markdown its HTML
with links dropped: nothing on a page is fetched, so the pages open offline.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_TABLE_ROWS", "index_page", "notebook_page", "render_outputs"]

MAX_TABLE_ROWS = 200
_SVG_NS = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')


def _chart_svg(chart: Any) -> str:
    import vl_convert

    svg = vl_convert.vegalite_to_svg(chart.to_json())
    # Inline SVG in HTML needs no namespace declarations; dropping them keeps the page free of URLs.
    return _SVG_NS.sub("", svg)


def _png_data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _external_links_removed(markup: str) -> str:
    """Markdown may link to the web; keep the text, drop the link, so the page never fetches."""
    return re.sub(r'\s(href|src)="(?!data:|#)[^"]*"', "", markup)


# Markdown cells interpolate dataset strings (robot_type, task names, paths): a crafted one can close
# a code block and smuggle markup in. The pages run no script at all (the CSP below forbids it), and
# active elements and event attributes are removed from what a cell rendered.
_ACTIVE_ELEMENTS = re.compile(
    r"<\s*(script|iframe|object|embed|frame|frameset|link|meta|base|form|style)\b.*?(</\s*\1\s*>|/?>)",
    re.I | re.S)
_EVENT_ATTRIBUTES = re.compile(r"""\s(on[a-z]+|formaction)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_SCRIPT_URLS = re.compile(r"""(href|src|xlink:href)\s*=\s*(["']?)\s*(javascript|vbscript|data:text/html)""", re.I)
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"


def _inert(markup: str) -> str:
    """Markup with active elements, event handlers and script URLs removed."""
    markup = _ACTIVE_ELEMENTS.sub("", markup)
    markup = _EVENT_ATTRIBUTES.sub("", markup)
    return _SCRIPT_URLS.sub(r"\1=\2#", markup)


_CALLOUT = re.compile(r"^<marimo-callout-output data-html='([^']*)' data-kind='([^']*)'></marimo-callout-output>$")


def _callout_html(text: str) -> str | None:
    """`mo.callout(...)` (an error and its fix, shown in the notebook) as a plain coloured box."""
    import json

    match = _CALLOUT.match(text.strip())
    if match is None:
        return None
    inner = json.loads(html.unescape(match.group(1)).replace("&#92;", "\\"))
    kind = json.loads(html.unescape(match.group(2)).replace("&#92;", "\\"))
    level = {"danger": "error", "warn": "warning"}.get(kind, "ok")
    return f'<div class="verdict {level}">{_inert(_external_links_removed(inner))}</div>'


def render_outputs(outputs: Sequence[Any]) -> list[str]:
    """HTML blocks for a notebook's cell outputs, in order; UI elements (interactive only) are skipped."""
    import altair as alt
    import pandas as pd
    from PIL import Image

    blocks = []
    for output in outputs:
        if output is None:
            continue
        if isinstance(output, alt.TopLevelMixin):
            blocks.append(f'<figure class="chart">{_chart_svg(output)}</figure>')
        elif isinstance(output, pd.DataFrame):
            shown = output.head(MAX_TABLE_ROWS)
            note = (f'<p class="note">first {MAX_TABLE_ROWS} of {len(output)} rows</p>'
                    if len(output) > MAX_TABLE_ROWS else "")
            blocks.append(f'<div class="table">{shown.to_html(index=False, border=0, na_rep="")}</div>{note}')
        elif isinstance(output, Image.Image):
            blocks.append(f'<figure class="image"><img alt="frames" src="{_png_data_url(output)}"></figure>')
        elif hasattr(output, "text") and isinstance(getattr(output, "text", None), str):
            text = output.text
            callout = _callout_html(text)
            if callout is not None:
                blocks.append(callout)
                continue
            if "<marimo-" in text:  # widgets and layouts of widgets: only meaningful live
                continue
            blocks.append(f'<div class="md">{_inert(_external_links_removed(text))}</div>')
        elif isinstance(output, str):
            blocks.append(f"<pre>{html.escape(output)}</pre>")
    return blocks


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2630;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:24px 0 8px}
.verdict{font-size:16px;padding:10px 14px;border-radius:6px;margin:12px 0;background:#eef5ee;
  border-left:5px solid #4c9a5a}
.verdict.failed,.verdict.error{background:#fbeeee;border-color:#c0392b}
.verdict.warning{background:#fdf6e7;border-color:#e69f00} .verdict.unavailable{background:#fdf6e7;border-color:#e69f00}
.meta{font-size:12px;color:#55606b} .meta code{font-size:11px}
details{margin:10px 0} summary{cursor:pointer;color:#34495e}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{padding:3px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top;max-width:520px;
  overflow-wrap:anywhere}
th{background:#f0f2f5}
.table{overflow-x:auto;max-height:520px;overflow-y:auto}
figure{margin:12px 0} figure.image img{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
pre{background:#f4f5f7;padding:10px;overflow-x:auto;font-size:12px}
.md pre{background:#f4f5f7} .note{color:#777;font-size:12px}
.status-ok{color:#2e7d32;font-weight:600} .status-failed{color:#c0392b;font-weight:600}
.status-unavailable,.status-warning{color:#b7791f;font-weight:600}
.status-error{color:#c0392b;font-weight:600} .level-error{color:#c0392b} .level-warning{color:#b7791f}
nav a{color:#2c5d8a}
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def _provenance(record: Mapping[str, Any]) -> str:
    knobs = ", ".join(f"{k}={v}" for k, v in record["knobs"].items()) or "defaults"
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items() if v)
    return (f'<details class="meta"><summary>How this was made</summary>'
            f"<p>command: <code>{html.escape(record['command'])}</code></p>"
            f"<p>dataset: <code>{html.escape(record['dataset'])}</code>, fingerprint "
            f"<code>{record['fingerprint'].get('sha256', '')[:16]}</code></p>"
            f"<p>seed and knobs: {html.escape(knobs)}</p><p>versions: {html.escape(versions)}</p>"
            f"<p>started {html.escape(record['started'])}</p></details>")


def notebook_page(name: str, result: Mapping[str, Any], record: Mapping[str, Any], rerun: str) -> str:
    """One notebook's page: verdict, provenance, the rerun command, why it failed, its outputs."""
    status = result["status"] if result["status"] != "ok" else result.get("level", "ok")
    error = (f"<h2>Why it failed</h2><pre>{html.escape(result['error'])}</pre>" if result.get("error") else "")
    body = (f'<nav><a href="index.html">&larr; report index</a></nav>'
            f"<h1>{html.escape(name)}</h1>"
            f'<div class="verdict {status}">{html.escape(result["verdict"])}</div>'
            f"{_provenance(record)}"
            f'<p class="meta">rerun: <code>{html.escape(rerun)}</code></p>'
            f"{error}{''.join(result['blocks'])}")
    return _page(f"{name}: lerobot_inspect report", body)


def _shown_status(page: Any) -> str:
    """The status a reader sees: a notebook that ran shows its verdict's level (ok / warning / error),
    so a red verdict never sits next to a green "ok"; one that did not run shows failed/unavailable."""
    return page.level if page.status == "ok" else page.status


def index_page(pages: Sequence[Any], record: Mapping[str, Any]) -> str:
    """The report's front page: one row per notebook (status, verdict, time) and the provenance."""
    rows = "".join(
        f'<tr><td><a href="{html.escape(p.page)}">{html.escape(p.name)}</a></td>'
        f'<td class="status-{_shown_status(p)}">{_shown_status(p)}</td>'
        f'<td class="level-{_shown_status(p)}">{html.escape(p.verdict)}</td>'
        f"<td>{p.duration_s:.1f} s</td></tr>" for p in pages)
    failed = [p.name for p in pages if p.status == "failed"]
    flagged = {level: [p.name for p in pages if p.status == "ok" and p.level == level]
               for level in ("error", "warning")}
    if failed:
        summary = (f'<div class="verdict failed">{len(failed)} notebook(s) failed: {html.escape(", ".join(failed))}; '
                   "their pages say why</div>")
    elif flagged["error"] or flagged["warning"]:
        parts = [f"{kind} in {html.escape(', '.join(names))}" for kind, names in
                 (("errors", flagged["error"]), ("warnings", flagged["warning"])) if names]
        level = "error" if flagged["error"] else "warning"
        summary = f'<div class="verdict {level}">{len(pages)} notebook(s) ran; {"; ".join(parts)}</div>'
    else:
        summary = f'<div class="verdict">{len(pages)} notebook(s) ran; no errors or warnings</div>'
    body = (f"<h1>lerobot_inspect report</h1><p class=\"meta\">{html.escape(record['dataset'])}</p>{summary}"
            f"<table><tr><th>notebook</th><th>status</th><th>verdict</th><th>time</th></tr>{rows}</table>"
            f"{_provenance(record)}<p class=\"meta\">Everything in these pages is inline; they open offline. "
            "report.json holds the same provenance for scripts.</p>")
    return _page("lerobot_inspect report", body)
