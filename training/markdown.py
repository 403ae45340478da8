"""Rewriting a generated section of a Markdown file, between <!-- NAME:start --> and <!-- NAME:end -->."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The start and end comments that delimit the section `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(path: Path, name: str, text: str) -> bool:
    """Put `text` between the section's markers in `path`; False when the file or a marker is missing."""
    start, end = markers(name)
    content = path.read_text() if path.is_file() else ""
    if start not in content or end not in content:
        return False
    before, rest = content.split(start, 1)
    path.write_text(f"{before}{start}\n{text}{end}{rest.split(end, 1)[1]}")
    return True
