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
FIGURE_COLUMN_PX = 756
"""The width at which a chapter shows a figure on a 1400 px wide window (measured in headless Chromium on the built
book: the text column beside the page's own table of contents); a wider PNG is scaled down to it."""
SMALLEST_TEXT_PX = 9
"""The smallest text a figure may show, in pixels at its displayed size."""
ILLEGIBLE: list[str] = []
"""Figures shown since the chapter's clock started whose smallest text is below :data:`SMALLEST_TEXT_PX`."""


def chapter_clock(chapter: int | None = None) -> float:
    """The start of a chapter's run, for :func:`glue_run_time`; with ``chapter``, its tables are numbered
    ``Table <chapter>.<n>`` from here on."""
    TABLES.update(chapter=chapter, count=0)
    ILLEGIBLE.clear()
    _check_figures_as_shown()
    return time.perf_counter()


def smallest_text_px(figure, png_width: int, column_px: int = FIGURE_COLUMN_PX) -> tuple[float, str]:
    """The smallest visible text of a matplotlib ``figure`` as the page shows it, in pixels, and that text: its font
    size in points x the PNG's dpi / 72 x the scale the page draws the PNG at (``min(1, column_px / png_width)``,
    ``png_width`` the rendered PNG's width in pixels).

    >>> import matplotlib.pyplot as plt
    >>> figure, axis = plt.subplots(figsize=(16, 2), dpi=100)
    >>> _ = axis.set_title("tiny", fontsize=8)
    >>> size, text = smallest_text_px(figure, png_width=1600)  # drawn at 756 px: 8 pt -> 11.1 px -> 5.2 px
    >>> round(size, 1), text
    (5.2, 'tiny')
    >>> plt.close(figure)
    """
    from matplotlib.text import Text

    scale = figure.dpi / 72 * min(1.0, column_px / png_width)
    texts = [(artist.get_fontsize() * scale, artist.get_text().strip()) for artist in figure.findobj(Text)
             if artist.get_visible() and artist.get_text().strip()]
    return min(texts, default=(float("inf"), ""))


def _png_width(data) -> int:
    """The width of a PNG (bytes, or base64 text as IPython's formatter returns it) from its header."""
    import base64

    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    return int.from_bytes(raw[16:20], "big")


def _check_figures_as_shown() -> None:
    """Inside a Jupyter kernel: before every cell, make sure the PNG formatter of matplotlib figures (what the
    inline backend and ``glue`` use to show one; the backend installs its own when the first figure is made) is
    wrapped, so that every figure shown is measured with :func:`smallest_text_px`; one too small to read is added
    to :data:`ILLEGIBLE`, which :func:`glue_run_time` turns into an error that fails the book's build."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter") or getattr(shell, "_checks_legibility", False):
        return
    shell._checks_legibility = True
    shell.events.register("pre_run_cell", lambda *_: _wrap_figure_formatter(shell))
    _wrap_figure_formatter(shell)


def _wrap_figure_formatter(shell) -> None:
    """Wrap the shell's PNG formatter for figures with the measurement (once; see :func:`_check_figures_as_shown`)."""
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    try:
        shown = formatter.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(shown, "checks_legibility", False):
        return

    def measured(figure):
        data = shown(figure)
        if data is not None:
            size, text = smallest_text_px(figure, _png_width(data))
            if size < SMALLEST_TEXT_PX:
                title = next((axis.get_title() for axis in figure.axes if axis.get_title()), "untitled")
                ILLEGIBLE.append(f"figure {title!r}: {text!r} shows at {size:.1f} px")
        return data

    measured.checks_legibility = True
    formatter.for_type(Figure, measured)


def assert_legible_figures() -> None:
    """Fail (``ValueError``) when a figure shown since :func:`chapter_clock` has text below
    :data:`SMALLEST_TEXT_PX` at its displayed size, naming each; a page's build then fails."""
    if ILLEGIBLE:
        found = "; ".join(ILLEGIBLE)
        ILLEGIBLE.clear()
        raise ValueError(f"text smaller than {SMALLEST_TEXT_PX} px where the page shows it: {found}. Raise its font "
                         "size or make the figure narrower (a PNG wider than the column is scaled down)")


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
    assert_legible_figures()
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
VERDICT = re.compile(r"^(supported|significant|contradicted|holds|not shown|not significant|consistent|no verdict|"
                     r"not testable)\b", re.IGNORECASE)
"""Any verdict a cell may open with; a cell that holds its own verdict and interval is judged by that verdict alone."""
SHARPER_MARK = "‡"
SHARPER_NOTE = (f" {SHARPER_MARK} An interval that reaches 0 beside a verdict that claims a difference: the verdict "
                "is Holm's step-down test, which is sharper than the simultaneous interval shown, so both hold.")
"""What a table's caption says when one of its rows shows a decisive verdict beside an interval reaching 0."""


def mark_sharper_verdicts(frame) -> bool:
    """Mark (in place, with :data:`SHARPER_MARK`) each interval reaching 0 that stands beside a decisive verdict:
    the cell's own verdict when the cell opens with one (``holds: +3.1 [-0.2, +6.3]``), else a verdict in another
    cell of its row that holds no interval. Return whether any was marked, so that the caption can say why
    (:data:`SHARPER_NOTE`)."""
    marked = False
    for row in range(len(frame)):
        cells = [frame.iat[row, column] for column in range(frame.shape[1])]
        texts = [cell.strip() if isinstance(cell, str) else "" for cell in cells]
        row_decisive = any(DECISIVE.match(text) and not INTERVAL.search(text) for text in texts)
        for column, text in enumerate(texts):
            found = INTERVAL.search(text)
            if not found or SHARPER_MARK in text or not float(found.group(1)) <= 0 <= float(found.group(2)):
                continue
            if DECISIVE.match(text) if VERDICT.match(text) else row_decisive:
                frame.iat[row, column] = f"{cells[column]}{SHARPER_MARK}"
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
    >>> both = table([{"v3": "not shown: +2.2 [-1.0, +5.4]", "v4": "holds: +3.1 [-0.2, +6.3]"}], caption="cells")
    >>> "+5.4]‡" in both.to_html(), "+6.3]‡" in both.to_html()
    (False, True)
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
