"""report.pdf: WeasyPrint prints the very HTML of report.html (same content, paged).

The template's ``@page`` rules put the lab, the run ID and "Page x of y" on every page.
WeasyPrint is imported lazily: importing ``reports`` must not pay for it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


def render_pdf(html: str, path: Path, base_url: Path | str | None = None) -> int:
    """Write ``html`` as a PDF at ``path``; return the number of pages."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    from weasyprint import HTML  # lazy: heavy import

    document = HTML(string=html, base_url=str(base_url) if base_url else None).render()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    document.write_pdf(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(document.pages)
