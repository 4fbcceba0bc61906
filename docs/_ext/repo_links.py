"""Sphinx extension: links from a page to a repository file outside docs/ (``../../benchmarks/RESULTS.md#everyday``)
are written relative to the page's source, so they work where GitHub shows the sources; in the HTML build they
are rewritten relative to the built page, so they work there too."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from docutils import nodes
from sphinx.application import Sphinx


def rewrite(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Point each relative link that leaves docs/ from the built page at the same repository file."""
    if app.builder.format != "html":
        return
    source_dir = os.path.dirname(os.path.join(app.srcdir, docname))
    page_dir = os.path.dirname(os.path.join(app.outdir, docname))
    for reference in doctree.findall(nodes.reference):
        uri = reference.get("refuri", "")
        parts = urlsplit(uri)
        if not uri or parts.scheme or parts.netloc or uri.startswith(("#", "/")):
            continue
        target = os.path.normpath(os.path.join(source_dir, parts.path))
        if os.path.commonpath([target, str(app.srcdir)]) == str(app.srcdir) or not os.path.exists(target):
            continue
        reference["refuri"] = os.path.relpath(target, page_dir) + (f"#{parts.fragment}" if parts.fragment else "")


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", rewrite)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
