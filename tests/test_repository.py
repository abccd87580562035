"""Repository conventions: stripped notebooks with badge and set-up cell, one repository URL, code lines that fit
the book's column, labelled and captioned figures, every chapter's scaffolding (goals, prerequisites, measured run
time, takeaways, exercises with executed solutions), no typed result numbers in the result chapters' prose, the
Pages workflow, dependencies that do not drift."""

import json
import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS, "no notebooks found"
    for notebook in NOTEBOOKS:
        assert f"notebooks/{notebook.stem}" in toc, f"{notebook.name} is not in _toc.yml"


CODE_COLUMN = 88
"""Characters of code that fit the book's code column without horizontal scrolling."""
FIGURE_HELPERS = ("world_effects(", "dose_response(", "variant_means(", "epoch_curves(", "seed_dots(", "sweep_curve(")
"""sac_minimal.lab.plots functions: each sets a title and axis labels."""


def repository() -> tuple[str, str]:
    """The repository URL and branch, set once in _config.yml."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return config["url"].rstrip("/"), config["branch"]


def code_cells(path):
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "notebooks are named NN_topic.ipynb"
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name} cell {index} has stored outputs; strip them (the book build executes notebooks)"
            )
    title = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# ")
    setup = next(cell for cell in cells if cell["cell_type"] == "code")
    assert "remove-cell" in setup["metadata"].get("tags", [])
    source = "".join(setup["source"])
    assert '"google.colab" in sys.modules' in source and "torch.set_num_threads(1)" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badges_and_colab_cells_use_the_configured_repository(path):
    url, branch = repository()
    owner_and_name = url.removeprefix("https://github.com/")
    title = "".join(json.loads(path.read_text())["cells"][0]["source"])
    badge = f"https://colab.research.google.com/github/{owner_and_name}/blob/{branch}/notebooks/{path.name}"
    assert f"]({badge})" in title, f"{path.name}: the Colab badge must link {badge}"
    setup = code_cells(path)[0]
    assert f'REPOSITORY = "{url}"' in setup and f'"{url.rsplit("/", 1)[1]}[colab]"' in setup


def test_the_package_metadata_names_the_configured_repository():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] == repository()[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_fits_the_book_column(path):
    long = [line for cell in code_cells(path) for line in cell.splitlines() if len(line) > CODE_COLUMN]
    assert not long, f"{path.name}: {len(long)} code lines longer than {CODE_COLUMN} characters: {long[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_title_and_axis_labels(path):
    for raw in json.loads(path.read_text())["cells"]:
        cell = "".join(raw["source"])
        if raw["cell_type"] != "code" or "remove-output" in raw["metadata"].get("tags", []):
            continue
        if "plt.subplots(" not in cell and "plt.figure(" not in cell:
            continue
        helped = any(helper in cell for helper in FIGURE_HELPERS)
        titled = helped or any(word in cell for word in ("set_title(", "suptitle(", "title="))
        labelled = helped or (("set_xlabel(" in cell or "xlabel=" in cell)
                              and any(word in cell for word in ("set_ylabel(", "ylabel=", "yticklabels=", "set_yticks(")))
        assert titled and labelled, f"{path.name}: a figure without a title or axis labels:\n{cell[:300]}"


def test_pages_workflow_builds_the_book_and_deploys_it():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = {step.get("uses", "").split("@")[0] for step in steps}
    assert {"actions/checkout", "actions/setup-python", "actions/upload-pages-artifact",
            "actions/deploy-pages"} <= uses
    commands = " ".join(step.get("run", "") for step in steps)
    assert "jupyter-book build . -W -n --keep-going" in commands
    assert "download.pytorch.org/whl/cpu" in commands  # a CPU build of PyTorch, not the CUDA one
    assert workflow["permissions"]["pages"] == "write"


def _requirement_name(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_runtime_dependencies_appear_in_environment_yml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = (ROOT / "environment.yml").read_text().lower()
    conda_names = {"torch": "pytorch"}
    for requirement in project["dependencies"]:
        name = _requirement_name(requirement)
        assert re.search(rf"^\s*-\s*{re.escape(conda_names.get(name, name))}\b", environment, re.MULTILINE), (
            f"{name} is a runtime dependency in pyproject.toml but missing from environment.yml"
        )


def test_lower_bounds_only():
    """Runtime dependencies carry lower bounds only, so that Colab's preinstalled versions are kept."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "<" not in requirement and "==" not in requirement, f"runtime pins break Colab: {requirement}"


def cells_of(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_has_goals_prerequisites_run_time_takeaways_and_exercises(path):
    cells = cells_of(path)
    header = source(cells[1])
    assert cells[1]["cell_type"] == "markdown" and "**You will learn**" in header and "**It assumes**" in header
    assert "{glue:text}`run_time`" in header, f"{path.name}: the header must show the run time measured by the build"
    assert "glue_run_time(started)" in source(cells[-1]) and "remove-cell" in cells[-1]["metadata"]["tags"]
    markdown = [source(cell) for cell in cells if cell["cell_type"] == "markdown"]
    assert any(text.startswith("## Key takeaways") for text in markdown), f"{path.name}: no key takeaways"
    assert any(text.startswith("## Exercises") for text in markdown), f"{path.name}: no exercises"
    exercises = next(index for index, cell in enumerate(cells) if source(cell).startswith("## Exercises"))
    solutions = [cell for cell in cells[exercises:] if cell["cell_type"] == "code"
                 and "hide-cell" in cell["metadata"].get("tags", [])]
    assert 2 <= len(solutions) <= 4, f"{path.name}: {len(solutions)} exercise solutions, expected 2-4"
    shown = [source(cell)[:60] for cell in cells[exercises:] if cell["cell_type"] == "code"
             and not {"hide-cell", "remove-cell"} & set(cell["metadata"].get("tags", []))]
    assert not shown, f"{path.name}: a solution's code or output (its answer) is shown uncollapsed: {shown}"
    for solution in solutions:  # a solution that cannot fail is no check
        assert "assert " in source(solution), f"{path.name}: a solution without an assertion"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_numbered_captioned_referenced_and_its_heatmaps_have_colour_bars(path):
    cells = cells_of(path)
    prose = "\n".join(source(cell) for cell in cells if cell["cell_type"] == "markdown")
    for cell in cells:
        text = source(cell)
        if cell["cell_type"] != "code" or {"hide-input", "hide-cell"} & set(cell["metadata"].get("tags", [])):
            continue
        draws = any(word in text for word in ("plt.subplots(", "plt.figure(", "plt.show()"))
        if not draws or "remove-output" in cell["metadata"].get("tags", []):
            continue
        figure = cell["metadata"].get("mystnb", {}).get("figure", {})
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        assert figure.get("caption") and figure.get("name", "").startswith("fig-"), (
            f"{path.name}: a figure without a numbered caption:\n{text[:200]}")
        assert len(alt) > 20 and "/" not in alt, f"{path.name}: {figure['name']} needs real alt text"
        assert f"{{numref}}`{figure['name']}`" in prose, f"{path.name}: {figure['name']} is never referenced"
        if "imshow(" in text:
            assert text.count("colorbar(") >= 1, f"{path.name}: {figure['name']} has a heatmap without a colour bar"


RESULT_CHAPTERS = ("08_testbed", "09_training_table1", "10_table1_v3", "11_ablations", "12_qualitative")
ALLOWED_PERCENTS = {"5 %", "95 %", "80 %", "90 %", "10 %"}
"""Percentages that are design constants (test level, interval, power, the window rule, the plateau rule), not
results."""


def _prose_without_math_and_code(text):
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"\(https?://[^)]*\)", " ", text)


@pytest.mark.parametrize("name", RESULT_CHAPTERS)
def test_result_prose_names_no_number_that_code_did_not_write(name):
    """In the chapters that report results, a number with a decimal point or a percentage in the prose would be a
    result typed by hand; such sentences are written by code from the records instead."""
    cells = cells_of(ROOT / "notebooks" / f"{name}.ipynb")
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        prose = _prose_without_math_and_code(source(cell))
        decimals = re.findall(r"(?<![@\w.])\d+\.\d+\b", prose)  # metric names such as mAP@0.5 are not numbers
        percents = [match for match in re.findall(r"\b\d+(?:\.\d+)? ?%", prose) if match not in ALLOWED_PERCENTS]
        assert not decimals and not percents, f"{name}: typed numbers {decimals + percents} in:\n{prose[:300]}"


def _display_math_inside_paragraphs(text: str) -> list[str]:
    """Lines opening or closing a ``$$`` block with no blank line between them and the paragraph around them
    (MyST then renders the block inline, as raw ``\\(`` ... ``\\)``)."""
    lines, found, start = text.split("\n"), [], None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if start is None and stripped.startswith("$$"):
            start = index
            if not (len(stripped) > 2 and stripped.endswith("$$")):
                continue
        if start is not None and (index > start or len(stripped) > 2) and stripped.endswith("$$"):
            if start > 0 and lines[start - 1].strip():
                found.append(lines[start])
            if index + 1 < len(lines) and lines[index + 1].strip():
                found.append(line)
            start = None
    return found


def test_display_math_never_sits_inside_a_paragraph():
    assert _display_math_inside_paragraphs("text\n$$x = 1$$\nmore") == ["$$x = 1$$", "$$x = 1$$"]
    assert _display_math_inside_paragraphs("text\n\n$$x\n = 1,$$\n\nmore") == []
    pages = [(path, "".join(cell["source"])) for path in (*NOTEBOOKS, *sorted((ROOT / "book").glob("*.ipynb")))
             for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "markdown"]
    pages += [(path, path.read_text()) for path in sorted((ROOT / "book").glob("*.md"))]
    found = [(path.name, line) for path, text in pages for line in _display_math_inside_paragraphs(text)]
    assert not found, f"display math inside a paragraph (add blank lines around it): {found}"


def test_the_core_never_imports_the_lab():
    """The paper's code (sac_minimal's top level and data/) stands alone; the lab builds on it."""
    import ast

    core = [path for path in sorted((ROOT / "sac_minimal").rglob("*.py")) if "lab" not in path.parts
            and path.name != "__main__.py"]  # the entry point only hands over to the lab's command line
    assert len(core) > 10
    found = []
    for path in core:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.startswith("sac_minimal.lab")]
    assert not found, found
    top = sorted(path.stem for path in (ROOT / "sac_minimal").glob("*.py") if not path.stem.startswith("__"))
    assert len(top) <= 10, top


def test_every_table_has_a_caption_and_every_chapter_numbers_its_tables():
    """``sac_minimal.lab.book.table`` numbers captions ``Table <chapter>.<n>`` once a chapter's clock knows its
    number; every call gives a caption (the keyword is required, so a call without one fails the build)."""
    import ast

    for path in (*NOTEBOOKS, ROOT / "book" / "intro.ipynb"):
        sources = code_cells(path)
        calls = [node for source in sources for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "table"]
        assert all(any(keyword.arg == "caption" for keyword in call.keywords) for call in calls), path.name
        if path.parent.name == "notebooks":
            number = int(path.name[:2])
            assert any(f"chapter_clock({number})" in source for source in sources), path.name


PAGE_INCHES = 9.5
"""The widest figure (inches at the inline backend's 100 dpi): shown in the ~780 px column it is scaled by 0.82 or
more, so that text of :data:`SMALLEST_POINTS` stays at 9 px or more."""
SMALLEST_POINTS = 8


def test_figures_are_drawn_for_the_page_width():
    sources = [(path.name, source) for path in (*NOTEBOOKS, ROOT / "book" / "intro.ipynb")
               for source in code_cells(path)]
    sources.append(("plots.py", (ROOT / "sac_minimal" / "lab" / "plots.py").read_text()))
    wide = [(name, match.group(0)) for name, source in sources
            for match in re.finditer(r"figsize=\(([0-9.]+)", source) if float(match.group(1)) > PAGE_INCHES]
    small = [(name, match.group(0)) for name, source in sources
             for match in re.finditer(r"fontsize=([0-9.]+)", source) if float(match.group(1)) < SMALLEST_POINTS]
    assert not wide and not small, (wide, small)


LONG_FIGURE_CELL = 20
"""Lines of plotting code above which a figure's cell is collapsed behind a toggle (``hide-input``)."""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_long_plotting_code_is_collapsed(path):
    cells = json.loads(path.read_text())["cells"]
    shown = [cell.get("id") for cell in cells if cell["cell_type"] == "code"
             and "figure" in cell["metadata"].get("mystnb", {})
             and len("".join(cell["source"]).split("\n")) > LONG_FIGURE_CELL
             and not {"hide-input", "remove-input"} & set(cell["metadata"].get("tags", []))]
    assert not shown, f"{path.name}: figure cells longer than {LONG_FIGURE_CELL} lines shown inline: {shown}"


def test_book_execute_runs_notebooks_strictly(tmp_path, capsys):
    """``book --execute`` (what CI uses for chapters 08-12 in a second numeric environment) fails on a failing cell
    and on output to stderr, as the book build does, and passes a clean notebook."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from sac_minimal.lab.cli import main as cli

    def notebook(name: str, source: str) -> str:
        path = tmp_path / name
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
        return str(path)

    assert cli(["book", "--execute", notebook("clean.ipynb", "print(1 + 1)")]) == 0
    assert cli(["book", "--execute", notebook("stderr.ipynb", "import sys; print('x', file=sys.stderr)")]) == 1
    assert "wrote to stderr" in capsys.readouterr().err
    assert cli(["book", "--execute", notebook("fails.ipynb", "1 / 0")]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert cli(["book", "--execute", str(tmp_path / "missing.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err


DIAGRAMS = {"sac_module": "04_sac_components", "ssad_detector": "07_ssad_and_evaluation",
            "experiment_design": "09_training_table1"}
"""The book's block diagrams (SVG kept in the repository) and the chapter that shows each."""


@pytest.mark.parametrize("name, chapter", sorted(DIAGRAMS.items()))
def test_the_diagrams_exist_and_are_shown_and_referenced(name, chapter):
    """Each diagram is a well-formed SVG with a title (what a screen reader says), shown as a numbered figure in its
    chapter and referenced from the text."""
    import xml.etree.ElementTree as ElementTree

    path = ROOT / "book" / "figures" / f"{name}.svg"
    tree = ElementTree.parse(path)
    assert tree.getroot().find("{http://www.w3.org/2000/svg}title") is not None
    prose = "\n".join(source(cell) for cell in cells_of(ROOT / "notebooks" / f"{chapter}.ipynb")
                      if cell["cell_type"] == "markdown")
    figure = re.search(r"```\{figure\} \.\./book/figures/" + name + r"\.svg\n:name: (fig-[a-z-]+)", prose)
    assert figure and f"{{numref}}`{figure.group(1)}`" in prose


GLOSSARY_TERMS = ("world", "development world", "confirmatory world", "heterogeneity", "regime v3", "regime v4",
                  "regime v5", "granularity", "control per window", "control per video",
                  "SSAD+Θ", "capacity-matched baseline", "composed attention", "official SAC", "light Θ",
                  "stabilised", "reference gate", "privileged control", "headroom control", "acceptance test",
                  "Holm's adjustment", "simultaneous interval", "detectable difference", "supported",
                  "contradicted", "not shown", "consistent", "exploratory", "share of the control's gain")


def test_the_notation_page_defines_the_words_of_the_experiments():
    text = (ROOT / "book" / "notation.md").read_text()
    glossary = text[text.index("```{glossary}"):]
    glossary = glossary[:glossary.index("\n```\n")]
    defined = {line for line in glossary.splitlines() if line and not line.startswith((" ", "```"))}
    assert set(GLOSSARY_TERMS) <= defined, set(GLOSSARY_TERMS) - defined


def test_a_chapter_shows_a_training_loop_a_reader_can_watch():
    """Training is not only behind a function call: a visible cell runs the forward pass, the loss, the backward pass
    and the optimiser step, and the chapter plots its curves."""
    visible = [source(cell) for path in NOTEBOOKS for cell in cells_of(path) if cell["cell_type"] == "code"
               and not {"remove-cell", "hide-cell", "hide-input", "remove-input"} & set(cell["metadata"].get("tags", []))]
    loops = [text for text in visible if ".backward()" in text and "optimizer.step()" in text and "for epoch" in text]
    assert loops, "no visible training loop in any chapter"


def test_every_live_widget_has_a_static_counterpart():
    """A cell that builds an ipywidgets explorer is not executed by the build (``skip-execution``), sits under a "Run
    it live" note, and that note points at a numbered figure showing the same thing without a kernel."""
    for path in NOTEBOOKS:
        cells = cells_of(path)
        for index, cell in enumerate(cells):
            if cell["cell_type"] == "code" and re.search(r"widgets\.(interactive|interact)\(", source(cell)):
                assert "skip-execution" in cell["metadata"].get("tags", []), f"{path.name}: a widget is executed"
                note = source(cells[index - 1])
                assert "Run it live" in note and "{numref}`fig-" in note, f"{path.name}: no static counterpart"


def test_figure_numbers_are_rewritten_by_chapter_in_page_order():
    import sys
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from chapter_numbers import chapter_of, number_figures_by_chapter
    finally:
        sys.path.pop(0)
    assert chapter_of("notebooks/09_training_table1") == 9 and chapter_of("book/intro") == 0
    assert chapter_of("book/notation") is None
    env = SimpleNamespace(toc_fignumbers={
        "notebooks/09_training_table1": {"figure": {"b": (32,), "a": (31,), "c": (33,)}},
        "book/intro": {"figure": {"x": (2,), "y": (1,)}},
        "book/notation": {"figure": {"z": (40,)}},
    })
    assert number_figures_by_chapter(None, env) == []
    assert env.toc_fignumbers["notebooks/09_training_table1"]["figure"] == {"a": (9, 1), "b": (9, 2), "c": (9, 3)}
    assert env.toc_fignumbers["book/intro"]["figure"] == {"y": (0, 1), "x": (0, 2)}
    assert env.toc_fignumbers["book/notation"]["figure"] == {"z": (40,)}  # not a chapter: left as Sphinx numbered it


from sac_minimal.lab.book import FIGURE_COLUMN_PX, SMALLEST_TEXT_PX  # noqa: E402  (the PNG figures' rule too)


@pytest.mark.parametrize("path", sorted((ROOT / "book" / "figures").glob("*.svg")), ids=lambda path: path.name)
def test_every_svg_text_is_at_least_nine_pixels_where_the_book_shows_it(path):
    """An SVG drawn at 100 % of the text column is scaled by column / viewBox width; its smallest text (the root's
    font size, every class's, every element's own) times that scale must stay legible."""
    source = path.read_text()
    width = float(re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"', source).group(1))
    sizes = [float(size) for size in re.findall(r'font-size(?:="|:\s*)([\d.]+)', source)]
    assert sizes, f"{path.name}: no font size found"
    shown = min(sizes) * FIGURE_COLUMN_PX / width
    assert shown >= SMALLEST_TEXT_PX, (f"{path.name}: its smallest text ({min(sizes)} px in a {width:g} px wide "
                                        f"drawing) shows at {shown:.1f} px; at least {SMALLEST_TEXT_PX} px needed")


def test_the_lab_imports_in_one_direction():
    """Each lab module imports only modules its package docstring lists above it (no circle, no import back up):
    a ``verify`` walks down from records to tables, runs and config, never back."""
    import ast

    import sac_minimal.lab

    order = [line.split()[0] for line in sac_minimal.lab.__doc__.split("listed above it.\n", 1)[1].splitlines()
             if line.startswith("    ")]
    folder = ROOT / "sac_minimal" / "lab"
    assert sorted(order) == sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")
    upward = []
    for position, name in enumerate(order):
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sac_minimal.lab."):
                imported = node.module.split(".")[2]
                if imported != name and order.index(imported) > position:
                    upward.append(f"{name} imports {imported}")
    assert not upward, upward


def test_no_function_runs_past_sixty_lines_of_code():
    """A function a reader can hold in view: at most 60 lines after its docstring, in the package."""
    import ast

    long = []
    for path in sorted((ROOT / "sac_minimal").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                documented = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str)
                start = first.end_lineno + 1 if documented and len(node.body) > 1 else first.lineno
                if node.end_lineno - start + 1 > 60:
                    long.append(f"{path.relative_to(ROOT)}: {node.name} ({node.end_lineno - start + 1} lines)")
    assert not long, long
