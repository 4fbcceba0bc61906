"""Writing into benchmarks/RESULTS.md by section anchor: every section there starts with an ``<a id="NAME"></a>``
line before its ``## `` heading, and those names are the stable links from the code and the docs, so scripts that
add their tables find a section by its anchor, never by a heading's wording."""
from __future__ import annotations


def anchor_line(name: str) -> str:
    """The line that opens section ``name`` in RESULTS.md."""
    return f'<a id="{name}"></a>'


def _section_span(content: str, name: str) -> tuple:
    """(start of the section's heading line, end of the section) in ``content``; the end is where the next
    ``## `` section's anchor line (or its heading, if it has none) begins, or the end of the text."""
    start = content.find(anchor_line(name))
    if start < 0:
        raise ValueError(f"RESULTS.md has no section {name!r} (no line {anchor_line(name)})")
    heading = content.index("\n## ", start) + 1
    following = content.find("\n## ", heading)
    if following < 0:
        return heading, len(content)
    previous_line = content.rfind("\n", 0, following) + 1
    end = previous_line if content[previous_line:following].startswith("<a id=") else following + 1
    return heading, end


def insert_at_end_of_section(path: str, name: str, text: str, new_paragraph: bool = True) -> None:
    """Insert ``text`` at the end of section ``name`` of the RESULTS.md at ``path``: after a blank line, or, with
    ``new_paragraph=False``, on the line after the section's last one (a further row of a table it ends with)."""
    with open(path) as handle:
        content = handle.read()
    _, end = _section_span(content, name)
    before = content[:end].rstrip("\n") + ("\n\n" if new_paragraph else "\n")
    with open(path, "w") as handle:
        handle.write(before + text.strip("\n") + "\n\n" + content[end:])


def replace_in_heading(path: str, name: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the ``## `` heading of section ``name`` (e.g. its state: has not run / ran)."""
    with open(path) as handle:
        content = handle.read()
    heading, _ = _section_span(content, name)
    line_end = content.index("\n", heading)
    line = content[heading:line_end].replace(old, new)
    with open(path, "w") as handle:
        handle.write(content[:heading] + line + content[line_end:])
