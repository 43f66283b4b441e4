"""The "(p. N)" after each ``a.pg`` link of report.pdf, in one layout pass.

The template asks for them with CSS ``target-counter(attr(href url), page)``. WeasyPrint
lays out every page that holds such a reference at least twice more (once to learn the
target's page, once more because the page total changed between passes): on the 16S
report 55 page layouts for 25 pages, about a third of the PDF's time. Instead, the PDF's
copy of the HTML gets a fixed-width placeholder ``(p. 00)`` in each link; after the single
layout the page of each target is read from the document's anchors and the digits are
written into the laid-out text (digits are tabular in the report's fonts, so a shorter
number is right-aligned inside the placeholder's width and no line moves).

:func:`fill` reaches into WeasyPrint's laid-out boxes (``Page._page_box``, ``TextBox``,
the text's Pango layout). It checks what it needs and returns ``False`` when the
installed WeasyPrint is not shaped as expected; :func:`reports.pdf.render_pdf` then
renders the unmodified HTML, with ``target-counter`` (slower, same page numbers).
"""

from __future__ import annotations

import re

DIGITS = 2
"""Width of the placeholder in digits: a document of 100 pages or more is rendered again
with a wider one (numbers never overflow their placeholder)."""

_PG_LINK = re.compile(r'(<a class="(?:[^"]*\s)?pg(?:\s[^"]*)?" href="#([^"]+)">)(.*?)</a>', re.S)
_HIDE_AFTER = ("<style>a.pg::after { content: none; } "
               ".pgref { white-space: nowrap; color: #555; font-weight: normal; }</style>")


def with_placeholders(html: str, digits: int = DIGITS) -> tuple[str, int]:
    """``html`` with a ``(p. 00…)`` placeholder in every ``a.pg`` link and the CSS
    ``target-counter`` turned off; returns the HTML and the number of placeholders."""
    zeros = "0" * digits
    count = 0

    def repl(m: re.Match) -> str:
        nonlocal count
        count += 1
        return (f'{m.group(1)}{m.group(3)} <span class="pgref" data-pg="{m.group(2)}">(p. '
                f'<span class="pgn">{zeros}</span>)</span></a>')

    out = _PG_LINK.sub(repl, html)
    if count:
        out = out.replace("</head>", _HIDE_AFTER + "\n</head>", 1)
    return out, count


def anchor_pages(document) -> dict[str, int]:
    """Anchor name -> page number (from 1) of its first occurrence in ``document``."""
    pages: dict[str, int] = {}
    for number, page in enumerate(document.pages, 1):
        for name in page.anchors:
            pages.setdefault(name, number)
    return pages


def _classes(box) -> list[str]:
    element = getattr(box, "element", None)
    if element is None or not hasattr(element, "get"):
        return []
    return (element.get("class") or "").split()


def _set_text(text_box, text: str) -> None:
    """Replace the text of a laid-out ``TextBox`` (drawn from its Pango layout's text)."""
    layout = text_box.pango_layout
    text_box.text = text
    if hasattr(layout, "layout"):  # a live Pango layout (WeasyPrint keeps some active)
        layout.set_text(text)
    else:  # deactivated after layout; reactivate() sets ``layout.text`` when drawing
        layout.text = text


def fill(document, digits: int = DIGITS) -> bool:
    """Write each target's page number into the placeholders of a rendered ``document``.

    Returns ``False`` (document untouched or partly touched: render again without
    placeholders) when a page number is wider than the placeholder or the laid-out boxes
    are not what this function expects.
    """
    where = anchor_pages(document)
    if len(str(len(document.pages))) > digits:
        return False
    try:
        jobs = []
        for page in document.pages:
            for box in page._page_box.descendants():
                if "pgref" not in _classes(box) or hasattr(box, "text"):
                    continue  # the span's own box, not the text boxes inside it
                jobs.append(_plan(box, where.get(box.element.get("data-pg"))))
        if any(job is None for job in jobs):
            return False
        for job in jobs:
            job()
    except (AttributeError, TypeError, ValueError):
        return False
    return True


def _plan(ref_box, page: int | None):
    """A function writing ``page`` into the placeholder ``ref_box`` (``<span class=pgref>``
    laid out on one line: "(p. ", the digits, ")"), or ``None`` if its shape is unexpected."""
    children = list(ref_box.children)
    digits_at = next((i for i, c in enumerate(children) if "pgn" in _classes(c)), None)
    if digits_at is None or len(children[digits_at].children) != 1:
        return None
    digits_box = children[digits_at].children[0]
    old = getattr(digits_box, "text", "")
    if not old.isdigit() or not hasattr(digits_box, "pango_layout"):
        return None
    new = str(page) if page is not None else "?"
    if len(new) > len(old):
        return None
    shift = digits_box.width * (len(old) - len(new)) / len(old)

    def apply() -> None:
        _set_text(digits_box, new)
        digits_box.width -= shift
        for child in children[: digits_at + 1]:  # "(p. " and the digits move right: no gap inside
            child.translate(shift, 0)

    return apply
