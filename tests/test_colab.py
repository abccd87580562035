"""The Colab path: every notebook runs with only what its first cell installs (the ``colab`` extra) and what Colab
ships (a Jupyter kernel, IPython). The maintainer's check also executes the notebooks in such an environment
(``.ci/environments``); these tests check statically what that run cannot see everywhere, and the first cell itself."""

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))
SHIPPED_BY_COLAB = ("ipykernel", "ipython")
"""What a Colab runtime (any Jupyter kernel) has besides the packages the first cell installs."""


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def colab_closure() -> set:
    """The distributions a Colab user has after the first cell: the package's own dependencies, its ``colab``
    extra, what Colab ships, and everything those require (transitively, as installed here)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [*project["dependencies"], *project["optional-dependencies"]["colab"], *SHIPPED_BY_COLAB]
    closure = set()
    while pending:
        name = _requirement_name(pending.pop())
        if name in closure or name == "sac-minimal":
            continue
        closure.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [requirement for requirement in requirements if "extra ==" not in requirement]
    return closure


def _guarded(node: ast.AST, parents: dict) -> bool:
    """Whether an import sits in a ``try`` whose handlers catch ImportError (or ModuleNotFoundError)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
                handler.type is not None and any(name in ast.unparse(handler.type)
                                                 for name in ("ImportError", "ModuleNotFoundError"))
                for handler in node.handlers):
            return True
    return False


def unguarded_imports(source: str) -> set:
    """Top-level module names imported anywhere in ``source`` outside an ImportError guard."""
    source = "\n".join(line for line in source.splitlines()  # IPython's magics and shell lines are not Python
                       if not re.match(r"\s*(%|!(?!=))", line))
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if not _guarded(node, parents):
            names.update(module.split(".")[0] for module in modules)
    return names


def _outside_closure(names: set, closure: set) -> list:
    distributions = importlib.metadata.packages_distributions()
    outside = []
    for name in sorted(names):
        if name in sys.stdlib_module_names or name in ("sac_minimal", "google"):  # google.colab: Colab's own
            continue
        owners = {owner.lower().replace("_", "-") for owner in distributions.get(name, [name])}
        if not owners & closure:
            outside.append(f"{name} (from {', '.join(sorted(owners))})")
    return outside


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_notebook_imports_only_what_colab_has(path):
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    outside = _outside_closure(unguarded_imports(source), colab_closure())
    assert not outside, (f"{path.name} imports {', '.join(outside)}, which the Colab first cell does not install; "
                         "add it to the colab extra, or guard the import (sac_minimal.lab.book.glue for myst-nb)")


def test_the_package_imports_only_what_colab_has():
    closure, found = colab_closure(), {}
    for module in sorted((ROOT / "sac_minimal").rglob("*.py")):
        outside = _outside_closure(unguarded_imports(module.read_text()), closure)
        if outside:
            found[str(module.relative_to(ROOT))] = outside
    assert not found, f"modules that a notebook may import need more than the colab extra: {found}"


def test_the_import_check_can_fail():
    assert unguarded_imports("from myst_nb import glue") == {"myst_nb"}
    assert unguarded_imports("try:\n    from myst_nb import glue\nexcept ImportError:\n    glue = None") == set()
    assert _outside_closure({"myst_nb", "numpy", "ot"}, colab_closure()) == ["myst_nb (from myst-nb)"]


def _first_cell(path: Path) -> str:
    cells = [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    return "".join(cells[0]["source"])


RECORD_COMMANDS = textwrap.dedent('''
    import json, subprocess, sys, types
    if sys.argv[1] == "colab":
        sys.modules["google"] = types.ModuleType("google")
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    commands = []
    subprocess.run = lambda command, **options: commands.append([str(part) for part in command])
    exec(sys.stdin.read())
    print(json.dumps({"commands": commands, "path": sys.path[:1], "python": sys.executable}))
''')


COLAB_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
"""The chapters with an "Open in Colab" badge and a first cell that sets up Colab (tests/test_repository.py checks
that every one of them has it); three of them run here, since each run imports torch."""


@pytest.mark.parametrize("path", [COLAB_NOTEBOOKS[0], COLAB_NOTEBOOKS[8], COLAB_NOTEBOOKS[-1]],
                         ids=lambda path: path.name)
def test_the_colab_first_cell_installs_the_configured_repository_only_inside_colab(path):
    """Run the first cell with ``subprocess.run`` recorded, not executed: outside Colab it runs no command; inside
    (``google.colab`` imported) it clones the repository that ``_config.yml`` names and installs its colab extra."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    folder = url.rstrip("/").rsplit("/", 1)[1]
    for where in ("plain", "colab"):
        done = subprocess.run([sys.executable, "-c", RECORD_COMMANDS, where], input=_first_cell(path), text=True,
                              capture_output=True, check=True, cwd=ROOT)
        recorded = json.loads(done.stdout.strip().splitlines()[-1])
        if where == "plain":
            assert recorded["commands"] == [], f"{path.name}'s first cell runs commands outside Colab"
            continue
        assert recorded["commands"] == [
            ["git", "clone", "--depth", "1", url],
            [recorded["python"], "-m", "pip", "install", "-q", "-e", f"{folder}[colab]"],
        ]
        assert recorded["path"] == [folder]
