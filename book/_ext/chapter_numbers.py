"""Figures numbered by chapter ("Fig. 9.2"), like the book's tables ("Table 9.2").

The tables are numbered by the book's own helper (:func:`sac_minimal.lab.book.table`), chapter by chapter. Sphinx
numbers figures across the whole book instead ("Fig. 31"), unless the table of contents is numbered, and a numbered
table of contents restarts at each part of this book. So, once Sphinx has assigned its numbers, this extension gives
every figure the number ``<chapter>.<n>``: the chapter is the two-digit prefix of the page's file name
(``09_training_table1`` is chapter 9; the introduction, whose tables are numbered 0.n, is chapter 0), and ``n``
counts the page's figures in Sphinx's own order. Captions and ``{numref}`` references both read these numbers.
"""

from __future__ import annotations

import re

CHAPTER_FILE = re.compile(r"(?:^|/)(\d{2})_[^/]*$")
INTRODUCTION = "book/intro"


def chapter_of(docname: str) -> int | None:
    """The chapter a page belongs to: its file name's two-digit prefix, 0 for the introduction, else ``None``."""
    if docname == INTRODUCTION:
        return 0
    match = CHAPTER_FILE.search(docname)
    return int(match.group(1)) if match else None


def number_figures_by_chapter(app, env) -> list[str]:
    """Replace each chapter page's figure numbers ``(n,)`` by ``(chapter, k)``, k = 1, 2, ... in Sphinx's order."""
    for docname, kinds in env.toc_fignumbers.items():
        chapter = chapter_of(docname)
        if chapter is None or "figure" not in kinds:
            continue
        ordered = sorted(kinds["figure"].items(), key=lambda item: item[1])
        kinds["figure"] = {target: (chapter, index) for index, (target, _) in enumerate(ordered, start=1)}
    return []


def setup(app):
    app.connect("env-get-updated", number_figures_by_chapter, priority=900)  # after Sphinx numbers them (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
