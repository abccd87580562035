"""Repository conventions: stripped notebooks with badge and Colab cell, dependencies that do not drift."""

import json
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS, "no notebooks found"
    for notebook in NOTEBOOKS:
        assert f"notebooks/{notebook.stem}" in toc, f"{notebook.name} is not in _toc.yml"


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
    assert "colab.research.google.com/github/" in title and f"notebooks/{path.name}" in title
    install = cells[1]
    assert install["cell_type"] == "code" and "remove-cell" in install["metadata"].get("tags", [])
    assert '"google.colab" in sys.modules' in "".join(install["source"])


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
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "<" not in requirement and "==" not in requirement, f"runtime pins break Colab: {requirement}"
