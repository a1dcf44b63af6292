"""The participant report's HTML: one self-contained page (inline CSS, figures as local
relative links, no scripts, nothing fetched from the network). Strings in, a string out."""

from __future__ import annotations

import html

__all__ = ["page", "table", "section", "CSS"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
color:#1d1d1f;background:#fafafa;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:1.5em}header p{margin:4px 0 0;opacity:.85}
nav{padding:6px 28px;background:#e8edf3;font-size:.9em}nav a{margin-right:14px;color:#1f3a5f}
main{padding:8px 28px 40px;max-width:1250px}
h2{border-bottom:2px solid #1f3a5f;padding-bottom:3px;margin-top:32px}
h3{margin:22px 0 6px;color:#1f3a5f}
table{border-collapse:collapse;font-size:.88em;margin:6px 0}
td,th{border:1px solid #ccd;padding:3px 8px;text-align:left;vertical-align:top;
white-space:pre-line}
th{background:#eef1f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0 16px}figure img{max-width:100%;border:1px solid #ccc;display:block}
figcaption{font-size:.85em;color:#444;margin-top:3px}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}
.warn{background:#fff7e0;border-left:4px solid #e5a100;padding:6px 10px;margin:4px 0}
.error{background:#fdecea;border-left:4px solid #b42318;padding:6px 10px;margin:4px 0}
pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.86em}
pre{background:#f0f0f0;padding:8px;white-space:pre-wrap;word-break:break-all}
"""


def esc(value) -> str:
    return html.escape(str(value))


def table(rows, header=None, numeric=()) -> str:
    """An HTML table of ``rows`` (cells escaped); columns in ``numeric`` right-aligned."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{esc(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def section(title, body, anchor=None, level=2) -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}>\n<h{level}>{esc(title)}</h{level}>\n{body}\n</section>\n"


def figure(src, caption, alt) -> str:
    return (f'<figure><img src="{esc(src)}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title, subtitle, nav, sections) -> str:
    """The whole document: ``nav`` is ``[(anchor, label)]``, ``sections`` HTML strings."""
    links = "".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>\n"
            f"<nav>{links}</nav>\n<main>\n" + "".join(sections) + "</main>\n</body>\n</html>\n")
