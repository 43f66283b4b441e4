"""report.pdf: WeasyPrint prints the very HTML of report.html (same content, paged).

The template's ``@page`` rules put the lab, the run ID and "Page x of y" on every page.
The "(p. N)" page references are written after a single layout pass
(:mod:`reports.pdf_pagerefs`). WeasyPrint is imported lazily: importing ``reports`` must
not pay for it.
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

from . import pdf_pagerefs as pagerefs

_INLINE_SVG = re.compile(r'<svg class="plot"[^>]*>.*?</svg>', re.S)


def svg_as_images(html: str) -> str:
    """Each inline plot ``<svg>`` as an ``<img>`` with the same SVG in a data: URI.

    Same drawing, same vector output in the PDF; but WeasyPrint no longer runs the HTML
    CSS cascade over every SVG element, which halves the layout time of a report with
    plots. Only the PDF's copy of the HTML is changed; report.html keeps inline SVG.
    """

    def repl(m: re.Match) -> str:
        svg = m.group(0).replace('<svg class="plot" role="img" ', "<svg ", 1)
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return f'<img class="plot" alt="plot" src="data:image/svg+xml;base64,{data}">'

    return _INLINE_SVG.sub(repl, html)


def render_pdf(html: str, path: Path, base_url: Path | str | None = None) -> int:
    """Write ``html`` as a PDF at ``path``; return the number of pages."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    from weasyprint import HTML  # lazy: heavy import

    with no_gc():
        document = _render(HTML, svg_as_images(html), str(base_url) if base_url else None)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        document.write_pdf(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(document.pages)


@contextmanager
def no_gc():
    """Python's cyclic garbage collector off while WeasyPrint builds and draws the pages.

    The layout allocates some 500 000 objects, each allocation burst triggering a
    collection that walks every live object (in ``bmsrig run``, the whole plan run's
    too): about a sixth of the PDF's time, for a few MB more memory. Restored after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _render(HTML, html: str, base_url: str | None):
    """Lay ``html`` out once with page-reference placeholders and fill them in; if that
    cannot be done (a page number wider than its placeholder, an unexpected WeasyPrint),
    lay out again with a wider placeholder, then with CSS ``target-counter``."""
    for digits in (pagerefs.DIGITS, pagerefs.DIGITS + 1):
        marked, count = pagerefs.with_placeholders(html, digits)
        document = HTML(string=marked, base_url=base_url).render()
        if count == 0 or pagerefs.fill(document, digits):
            return document
    return HTML(string=html, base_url=base_url).render()
