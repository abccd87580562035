"""What the book's pages share besides the science: the measured run time in every chapter's header, and tables.

Each chapter's hidden first cell starts a clock (:func:`chapter_clock`) and its hidden last cell glues the elapsed
time (:func:`glue_run_time`); the chapter's header shows it with ``{glue:text}`run_time```, so the time a reader
sees was measured by the build that made the page, never typed. :func:`table` turns rows into an HTML table (pandas),
so that results are tables, not padded text that runs past the page. Nothing here is needed to use the package.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping, Sequence


TABLES = {"chapter": None, "count": 0}
"""The chapter being run and how many tables it has shown (for :func:`table`'s numbers)."""


def chapter_clock(chapter: int | None = None) -> float:
    """The start of a chapter's run, for :func:`glue_run_time`; with ``chapter``, its tables are numbered
    ``Table <chapter>.<n>`` from here on."""
    TABLES.update(chapter=chapter, count=0)
    return time.perf_counter()


class Seconds(float):
    """A duration whose text form is ``"12 s"``, or ``"under 1 s"`` (what ``{glue:text}`` prints).

    >>> Seconds(12.4), Seconds(0.3)
    (12 s, under 1 s)
    """

    def __repr__(self) -> str:
        return "under 1 s" if self < 0.5 else f"{float(self):.0f} s"


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` inside a book build: store ``value`` under ``name`` for the page's text and figures.
    Elsewhere (Colab, a plain Jupyter kernel, where myst-nb is not installed) there is no page to glue into: the
    value is shown when ``display`` is true (or when it is a rich object such as a figure or an animation, which
    the page would have shown), and nothing happens otherwise."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display or hasattr(value, "_repr_html_") or hasattr(value, "savefig"):
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def glue_run_time(started: float, name: str = "run_time") -> Seconds:
    """Glue the seconds since ``started`` under ``name`` for the chapter's header (inside a book build), or print
    them (elsewhere, e.g. Colab, where myst-nb is not installed)."""
    elapsed = Seconds(time.perf_counter() - started)
    try:
        import myst_nb  # noqa: F401  (only to tell a book build from a plain kernel)
    except ImportError:
        print(f"this notebook's code ran in {elapsed!r}")
    else:
        glue(name, elapsed)
    return elapsed


def readable_number(value: float) -> str:
    """A float for a reader: four significant digits (0.1, 0.001, 45.52), thousands with separators (47,720), tiny
    values in powers of ten (3.1e-08).

    >>> [readable_number(value) for value in (0.1, 0.001, 45.523, 47720.0, 3.1e-08, 0.0)]
    ['0.1', '0.001', '45.52', '47,720', '3.1e-08', '0']
    """
    size = abs(value)
    if size >= 1e4:
        return f"{value:,.0f}"
    if size and size < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


WIDE_TEXT = 60
"""A table column whose longest text has more characters than this is given a minimum width
(:data:`WIDE_COLUMN_EM`)."""
WIDE_COLUMN_EM = {2: 16, 3: 16, 4: 14, 5: 12, 6: 10, 7: 8}
"""The minimum width (em) of the long-text columns by the table's number of columns, shared among them when there are
several: as much as the page's text column (768 px) leaves beside the others, so that the table is never wider than
the page; none from 8 columns on."""


INTERVAL = re.compile(r"\[([+-]?\d+(?:\.\d+)?), ([+-]?\d+(?:\.\d+)?)\]")
"""An interval as the book writes it in a table cell: ``[-0.16, +6.28]``."""
DECISIVE = re.compile(r"^(supported|significant|contradicted|holds)\b", re.IGNORECASE)
"""A verdict that claims a difference (``not shown``, ``not significant``, ``consistent`` claim none)."""
SHARPER_MARK = "‡"
SHARPER_NOTE = (f" {SHARPER_MARK} An interval that reaches 0 beside a verdict that claims a difference: the verdict "
                "is Holm's step-down test, which is sharper than the simultaneous interval shown, so both hold.")
"""What a table's caption says when one of its rows shows a decisive verdict beside an interval reaching 0."""


def mark_sharper_verdicts(frame) -> bool:
    """Mark (in place, with :data:`SHARPER_MARK`) each interval of a row that also holds a decisive verdict and whose
    interval reaches 0; return whether any was marked, so that the caption can say why (:data:`SHARPER_NOTE`)."""
    marked = False
    for row in range(len(frame)):
        cells = [frame.iat[row, column] for column in range(frame.shape[1])]
        if not any(isinstance(cell, str) and DECISIVE.match(cell.strip()) for cell in cells):
            continue
        for column, cell in enumerate(cells):
            found = INTERVAL.search(cell) if isinstance(cell, str) else None
            if found and float(found.group(1)) <= 0 <= float(found.group(2)) and SHARPER_MARK not in cell:
                frame.iat[row, column] = f"{cell}{SHARPER_MARK}"
                marked = True
    return marked


def table(rows: Sequence[Mapping] | Mapping[str, Sequence], formats: Mapping[str, str] | None = None,
          index: str | None = None, *, caption: str, numbered: bool = True):
    """An HTML table (a pandas ``Styler``) of ``rows`` (dicts with the same keys, or columns), with each column in
    ``formats`` (e.g. ``{"mAP": "{:.1f}"}``) formatted, ``index`` as the row labels, and a ``caption``, numbered
    ``Table <chapter>.<n>: caption`` inside a chapter (:func:`chapter_clock`) unless ``numbered`` is False (a
    maintainer's table in a collapsed block, such as a record's re-runs, which the text never cites and which should
    not push the reader's tables to higher numbers). Floats without a format are shown with at most four significant
    digits (0.1, not 0.100000).

    >>> styled = table([{"model": "SSAD", "mAP": 45.52}], {"mAP": "{:.1f}"}, index="model", caption="a model")
    >>> "45.5" in styled.to_html() and "a model" in styled.to_html()
    True
    >>> "&lt;script&gt;" in table([{"title": "<script>x</script>"}], caption="text").to_html()
    True
    >>> "0.001</td>" in table([{"eps": 0.001}], caption="a float").to_html()
    True
    >>> "min-width: 16em" in table([{"claim": "x" * 80, "p": 0.5}], caption="a claim").to_html()
    True
    >>> "min-width: 4em" in table([{"claim": "x" * 80, "v3": "y" * 80, "v4": "z" * 80, "p": 0.5}],
    ...                             caption="three long columns share the room").to_html()
    True
    >>> marked = table([{"verdict": "supported", "interval": "[-0.16, +6.28]"}], caption="a verdict")
    >>> "+6.28]‡" in marked.to_html() and "sharper than the simultaneous interval" in marked.caption
    True
    >>> "‡" in table([{"verdict": "not shown", "interval": "[-0.16, +6.28]"}], caption="agree").to_html()
    False
    >>> _ = chapter_clock(9); _ = table([{"a": 1}], caption="re-runs", numbered=False)
    >>> table([{"a": 1}], caption="the first the reader sees").caption
    'Table 9.1: the first the reader sees'
    >>> _ = chapter_clock()
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    if mark_sharper_verdicts(frame):
        caption += SHARPER_NOTE
    if index is not None:
        frame = frame.set_index(index)
    readable = {column: readable_number for column in frame.columns if frame[column].dtype.kind == "f"}
    # Cells, labels and caption are text, never markup: a record's text (a title, a label) is shown, not rendered.
    # A column of long text (a claim, a criterion) gets room, so that it is not squeezed into a word per line by
    # the narrow columns of numbers beside it; several such columns share that room, so that together they never
    # push the table past the page.
    long_text = [position for position, column in enumerate(frame.columns)
                 if frame[column].dtype.kind == "O" and frame[column].astype(str).str.len().max() > WIDE_TEXT]
    room = WIDE_COLUMN_EM.get(len(frame.columns), 0) // max(len(long_text), 1)
    wide = [{"selector": f".col{position}", "props": [("min-width", f"{room}em")]}
            for position in long_text if room]
    styled = frame.style.format({**readable, **(formats or {})}, na_rep="", escape="html").format_index(
        escape="html", axis=1).set_table_styles(
        [{"selector": "th, td", "props": [("padding", "0.25em 0.6em"), ("text-align", "left")]}, *wide])
    if index is None:
        styled = styled.hide(axis="index")
    else:
        styled = styled.format_index(escape="html", axis=0)
    if TABLES["chapter"] is not None and numbered:
        TABLES["count"] += 1
        caption = f"Table {TABLES['chapter']}.{TABLES['count']}: {caption}"
    return styled.set_caption(html.escape(caption))
