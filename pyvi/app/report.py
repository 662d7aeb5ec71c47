"""One self-contained HTML page from the report's markdown sections.

Each part of the pipeline writes a markdown section (headings, paragraphs, tables, ``![alt](file)``
figures) beside its figures; :func:`write_html` turns them into ``index.html`` with every figure
inlined as a data URI, so the page is a single file a person opens in a browser. Only the markdown
subset pyvi writes is understood; anything else is shown as escaped text.

A small inline script records, on ``<body>``, how many images the page has and how many decoded
(``data-images``, ``data-images-loaded``) and any script error (``data-errors``): the headless
browser test reads them.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from pathlib import Path

__all__ = ["markdown_to_html", "write_html"]

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 1em 0; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""

_CHECK_SCRIPT = """
window.addEventListener("error", function (event) {
  document.body.dataset.errors = (document.body.dataset.errors || "") + event.message + ";";
});
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.dataset.images = images.length;
  document.body.dataset.imagesLoaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
});
"""


def _inline(text: str) -> str:
    text = html.escape(text)
    text = _CODE.sub(r"<code>\1</code>", text)
    return _BOLD.sub(r"<strong>\1</strong>", text)


def _image(src: str, alt: str, base: Path) -> str:
    path = base / src
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'


def _table(rows: list[str]) -> str:
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    body = [r for r in cells[1:] if not all(set(c) <= set("-: ") for c in r)]
    head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
    lines = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"


def markdown_to_html(text: str, base: str | Path) -> str:
    """The markdown subset pyvi writes, as HTML; figures are read from ``base`` and inlined."""
    base = Path(base)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            out.append(_table(rows))
        elif match := _IMAGE.match(line):
            out.append(_image(match["src"], match["alt"], base))
            i += 1
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "![")):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "\n".join(out)


def write_html(out: str | Path, title: str, markdown: str) -> Path:
    """Writes ``out/index.html`` from ``markdown`` (figures relative to ``out``); returns its path."""
    out = Path(out)
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_CHECK_SCRIPT}</script></head>\n<body>\n"
        f"{markdown_to_html(markdown, out)}\n"
        '<p>Numbers: <a href="metrics.json">metrics.json</a>.</p>\n</body></html>\n'
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
