"""The built book as a reader sees it: no output line wider than the page, no path of the machine that built it.

These checks read the executed notebooks of a build (``_build/jupyter_execute``), so they run after
``jupyter-book build``; ``.ci/run`` runs them with ``REQUIRE_BUILT_BOOK=1``, which turns a missing build into a
failure instead of a skip.
"""

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
PAGE_WIDTH = 88
"""Characters of monospaced output that fit the page's text column."""
MACHINE_PATH = re.compile(r"(?<![\\w.])/(home|root|tmp|work|Users|var/folders|mnt)/|[A-Z]:\\\\Users")


def executed_notebooks():
    if not EXECUTED.exists():
        if os.environ.get("REQUIRE_BUILT_BOOK"):
            pytest.fail(f"{EXECUTED} not found: build the book first (jupyter-book build . -W -n --keep-going)")
        pytest.skip("the book is not built")
    paths = sorted(EXECUTED.rglob("*.ipynb"))
    assert paths, f"no executed notebooks under {EXECUTED}"
    return paths


def shown_outputs(path):
    """(cell index, text) of every output a reader sees: streams and plain text of cells not removed."""
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or "remove-output" in tags or "remove-cell" in tags:
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                yield index, "".join(output["text"]), True
            for mime, value in output.get("data", {}).items():
                text = "".join(value) if isinstance(value, list) else str(value)
                shown_as_text = mime == "text/plain" and not ({"text/html", "image/png"} & set(output["data"]))
                yield index, text, shown_as_text


def test_no_output_line_is_wider_than_the_page():
    wide = [f"{path.name} cell {index}: {line[:100]}" for path in executed_notebooks()
            for index, text, as_text in shown_outputs(path) if as_text
            for line in text.splitlines() if len(line) > PAGE_WIDTH]
    assert not wide, "output lines wider than the page:\n" + "\n".join(wide[:20])


def test_no_output_shows_a_path_of_the_building_machine():
    found = [f"{path.name} cell {index}: {MACHINE_PATH.search(text).group(0)}" for path in executed_notebooks()
             for index, text, _ in shown_outputs(path) if MACHINE_PATH.search(text)]
    assert not found, "outputs that print a machine path:\n" + "\n".join(found[:20])


def test_no_chapter_reports_a_run_time_of_zero_seconds():
    """The run time in each chapter's header is glued by the build; a page that ran in under a second says so."""
    glued = [(path.name, "".join(output["data"]["text/plain"])) for path in executed_notebooks()
             for cell in json.loads(path.read_text())["cells"] if "glue_run_time(" in "".join(cell["source"])
             for output in cell.get("outputs", []) if "text/plain" in output.get("data", {})]
    assert glued, "no chapter glued its run time"
    assert all(text != "0 s" for _, text in glued), f"run times of 0 s: {glued}"


def test_every_table_shown_is_numbered_in_order_from_one():
    """Every table in an open output is numbered, and a chapter's numbers run 1, 2, 3 ... in the order the reader
    meets them; only a maintainer's table in a collapsed output (a record's re-runs) may be left unnumbered."""
    captions, collapsed = [], set()
    for path in executed_notebooks():
        cells = json.loads(path.read_text())["cells"]
        for index, text, _ in shown_outputs(path):
            for caption in re.findall(r"<caption>(.*?)</caption>", text):
                captions.append((path.name, caption))
                if "hide-output" in cells[index].get("metadata", {}).get("tags", []):
                    collapsed.add((path.name, caption))
    assert captions, "no table captions found"
    unnumbered = [(name, caption[:60]) for name, caption in captions
                  if not re.match(r"Table \d+\.\d+: ", caption) and (name, caption) not in collapsed]
    assert not unnumbered, unnumbered
    for name in {name for name, _ in captions}:
        numbers = [int(match.group(1)) for page, caption in captions if page == name
                   for match in [re.match(r"Table \d+\.(\d+): ", caption)] if match]
        assert numbers == list(range(1, len(numbers) + 1)), (name, numbers)


COLUMN_PIXELS = 768
"""Width at which the book's theme shows a figure in the text column (measured in a 1400 px window)."""


def test_every_figure_is_shown_at_four_fifths_of_its_size_or_more():
    """A PNG wider than the column is scaled down; at 0.8 or more, text drawn at 8 pt (the smallest the notebooks
    use: tests/test_repository.py) stays at about 9 px on the page."""
    import base64
    import struct

    too_wide = []
    for path in executed_notebooks():
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            for output in cell.get("outputs", []):
                data = output.get("data", {}).get("image/png")
                if data:
                    width = struct.unpack(">I", base64.b64decode("".join(data))[16:20])[0]
                    if width > COLUMN_PIXELS / 0.8:
                        too_wide.append(f"{path.name} cell {index}: {width} px")
    assert not too_wide, too_wide


def test_no_page_embeds_widget_state_it_cannot_show():
    """A widget needs a kernel, which the online book does not have: no executed chapter stores widget state (so no
    page loads a widget manager for nothing); the live explorers are skipped in the build."""
    stored = [path.name for path in executed_notebooks()
              if "widgets" in json.loads(path.read_text()).get("metadata", {})
              or "application/vnd.jupyter.widget-view+json" in path.read_text()]
    assert not stored, f"chapters that store widget state: {stored}"


def test_figures_are_numbered_by_chapter_like_the_tables():
    """Every figure caption of a chapter page reads ``Fig. <chapter>.<n>`` with n = 1, 2, ... in page order, the
    scheme of the tables (book/_ext/chapter_numbers.py); the introduction is chapter 0."""
    executed_notebooks()  # skips (or fails in CI) without a build
    pages = {ROOT / "_build" / "html" / "book" / "intro.html": 0}
    chapters = (ROOT / "_build" / "html" / "notebooks").glob("[0-9][0-9]_*.html")
    pages.update({path: int(path.name[:2]) for path in chapters})
    counted = 0
    for page, chapter in pages.items():
        numbers = re.findall(r'caption-number">Fig\. ([0-9.]+)', page.read_text())
        assert numbers == [f"{chapter}.{n}" for n in range(1, len(numbers) + 1)], (page.name, numbers)
        counted += len(numbers)
    assert counted > 0


def shown_tables():
    """(notebook, caption, header, rows) of every HTML table in an output a reader can see or open."""
    def text(html):
        return re.sub(r"<.*?>", "", html).strip()

    def cells(html):  # header and data cells alike, in column order (a row label is a <th>)
        return [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", html, re.S)]

    for path in executed_notebooks():
        for _, output, _ in shown_outputs(path):
            for html in re.findall(r"<table.*?</table>", output, re.S):
                caption = re.search(r"<caption>(.*?)</caption>", html, re.S)
                head = re.search(r"<thead>(.*?)</thead>", html, re.S)
                body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
                header = [cell.lower() for cell in cells(head.group(1))] if head else []
                rows = [cells(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)] if body else []
                yield path.name, text(caption.group(1)) if caption else "", header, [row for row in rows if row]


def test_every_verdict_is_shown_beside_the_claim_it_judges():
    """A verdict word means nothing without its claim: every table with a verdict column has a claim column, and
    each claim is words (an id such as ``Q5`` alone fails)."""
    judged = 0
    for name, caption, header, rows in shown_tables():
        if "verdict" not in header:
            continue
        judged += 1
        claims = [index for index, column in enumerate(header) if "claim" in column]
        assert claims, f"{name}, {caption[:60]!r}: a verdict column without a claim column"
        short = [row[claims[0]] for row in rows if len(row[claims[0]].split()) < 4]
        assert not short, f"{name}, {caption[:60]!r}: claims that are not words: {short[:3]}"
    assert judged, "no table with a verdict column found"


def test_every_table_names_a_model_by_its_display_name():
    """Tables name each model by its display name (``SSAD+Θ``), never by its code name (``ssad_theta``), in open and
    collapsed outputs alike; only a column headed "code name" (what a reader types on the command line) shows it."""
    from sac_minimal.lab.variants import VARIANTS

    code_names = re.compile(r"(?<![\w`])(" + "|".join(name for name in VARIANTS if "_" in name) + r")(?![\w])")
    found = []
    for name, caption, header, rows in shown_tables():
        for row in rows:
            found += [(name, caption[:40], cell[:60]) for column, cell in zip(header, row)
                      if column != "code name" and code_names.search(cell)]
    assert not found, found[:5]


def test_no_verdict_stands_beside_an_interval_that_seems_to_contradict_it_unexplained():
    """An interval reaching 0 beside a verdict that claims a difference (supported, significant, contradicted,
    holds) is marked, and its table's caption says why (Holm's step-down test is sharper than the simultaneous
    interval); an interval beside no such verdict is never marked, so the mark means what the caption says. A cell
    that opens with its own verdict (``holds: +3.1 [-0.2, +6.3]``) is judged by it; any other by its row's."""
    from sac_minimal.lab.book import DECISIVE, INTERVAL, SHARPER_MARK, VERDICT

    unexplained = []
    for name, caption, _, rows in shown_tables():
        row_decisive = [any(DECISIVE.match(cell) and not INTERVAL.search(cell) for cell in row) for row in rows]
        for row, decisive in zip(rows, row_decisive):
            for cell in row:
                found = INTERVAL.search(cell)
                if not found:
                    continue
                claims = bool(DECISIVE.match(cell)) if VERDICT.match(cell) else decisive
                reaches_zero = float(found.group(1)) <= 0 <= float(found.group(2))
                explained = SHARPER_MARK in cell and "sharper than the simultaneous interval" in caption
                wrongly_marked = SHARPER_MARK in cell and not (claims and reaches_zero)
                if (claims and reaches_zero and not explained) or wrongly_marked:
                    unexplained.append((name, caption[:50], cell))
    assert not unexplained, unexplained[:5]
