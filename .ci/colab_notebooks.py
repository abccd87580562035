"""Execute notebooks top to bottom in the current environment, as a Colab user would (CI runs it in an
environment that has only the package's colab extra, a kernel and nbclient). Usage: colab_notebooks.py NB...

Prints each notebook's time; exits non-zero, naming the notebook and the failing cell's error, at the first
notebook that fails."""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

failed = []
for path in map(Path, sys.argv[1:]):
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    try:  # run in the notebook's folder, as Colab runs a cloned notebook
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as error:
        failed.append(path.name)
        print(f"[colab] {path.name}: FAILED\n{str(error)[-3000:]}", flush=True)
        continue
    print(f"[colab] {path.name}: ran in {time.perf_counter() - started:.0f} s", flush=True)
if failed:
    sys.exit(f"[colab] notebooks that do not run with only the colab extra: {', '.join(failed)}")
