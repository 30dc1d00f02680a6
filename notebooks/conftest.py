"""Notebook tests: every chapter executes top to bottom in quick mode under nbval.

How it works (``pytest`` collects ``notebooks/`` before ``tests/``, see pyproject.toml):

1. Each jupytext MyST chapter ``notebooks/NN-slug/*.md`` is read with jupytext and handed to
   nbval, which runs it cell by cell in one kernel started in the chapter's folder
   (``--nbval-lax``: a cell fails only if it raises; outputs are not compared). Test ids are the
   source paths, so ``pytest notebooks/02-probability/03-sampling.md`` runs one section.
2. After the last cell, one extra item, ``budget``, checks the whole notebook ran within the
   per-notebook time budget (``GENLIB_NOTEBOOK_BUDGET_S``, default 300 s, the kit's promise
   for a laptop CPU) and, if every cell passed, saves the executed notebook - outputs and widget
   state - as ``_build/executed/<source path>.ipynb``. The book test (tests/book) renders those
   copies instead of executing the chapters a second time.

Quick mode (``GENLIB_QUICK=1``) is switched on for the kernels unless the caller set
``GENLIB_QUICK`` already (``GENLIB_QUICK=0 pytest notebooks`` runs the full budgets).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import jupytext
import nbformat
import nbval.plugin
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

ROOT = Path(__file__).resolve().parent.parent
EXECUTED_DIR = ROOT / "_build" / "executed"
DEFAULT_BUDGET_S = 300.0
TIMES: dict[str, float] = {}  # source path -> seconds, printed at the end of the run

# Code run in the kernel after the last cell to collect the live widgets' state, so the saved
# notebook renders its widgets in the static book exactly as a notebook saved by JupyterLab does.
_WIDGET_STATE_CODE = """\
import json as _json, sys as _sys
try:
    import ipywidgets as _ipw
    _state = _ipw.Widget.get_manager_state(drop_defaults=True)
except Exception:
    _state = {"version_major": 2, "version_minor": 0, "state": {}}
_sys.stdout.write("GENLIB_WIDGET_STATE=" + _json.dumps(_state) + "\\n")
"""


def is_chapter_notebook(path: Path) -> bool:
    """True for a jupytext MyST notebook (a ``.md`` file whose front matter names a kernel)."""
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "jupytext:" in head and "kernelspec:" in head


def notebook_budget_s() -> float:
    raw = os.environ.get("GENLIB_NOTEBOOK_BUDGET_S", str(DEFAULT_BUDGET_S))
    try:
        value = float(raw)
    except ValueError as err:
        raise ValueError(
            f"GENLIB_NOTEBOOK_BUDGET_S must be a number of seconds, got {raw!r}"
        ) from err
    if value <= 0:
        raise ValueError(f"GENLIB_NOTEBOOK_BUDGET_S must be positive, got {value}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    # The chapter tests are nbval tests in lax mode, run in this very environment.
    config.option.nbval_lax = True
    config.option.nbval_current_env = True
    timeout = getattr(config.option, "nbval_cell_timeout", None)
    if not timeout or timeout < 0:
        config.option.nbval_cell_timeout = notebook_budget_s()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if not is_chapter_notebook(file_path):
        return None
    return ChapterNotebook.from_parent(parent, path=file_path,
                                       source=file_path.resolve().relative_to(ROOT))


def read_chapter(path: Path) -> nbformat.NotebookNode:
    """The MyST chapter as a notebook, tagged with its source path and the sha256 of its bytes."""
    path = Path(path).resolve()
    nb = jupytext.read(path)
    nb.metadata["genlib"] = {
        "source": path.relative_to(ROOT).as_posix(),
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    return nb


class _MystReader:
    """Stands in for the ``nbformat`` module inside nbval's ``collect``, which reads notebooks
    with ``nbformat.read(path)``: here that call reads the MyST source with jupytext."""

    @staticmethod
    def read(path, as_version=4):
        return read_chapter(Path(path))

    def __getattr__(self, name):
        return getattr(nbformat, name)


class ChapterNotebook(IPyNbFile):
    """nbval's notebook collector plus a final ``budget`` item that saves the executed copy."""

    def __init__(self, *args, source: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        self.started = None
        self.failed_cells: list[int] = []
        self._saved_quick = None

    def setup(self):
        self._saved_quick = os.environ.get("GENLIB_QUICK")
        if self._saved_quick is None:
            os.environ["GENLIB_QUICK"] = "1"
        try:
            super().setup()  # starts the kernel, which inherits os.environ
        finally:
            if self._saved_quick is None:
                os.environ.pop("GENLIB_QUICK", None)
        self.started = time.perf_counter()

    def collect(self):
        real = nbval.plugin.nbformat
        nbval.plugin.nbformat = _MystReader()
        try:
            cells = list(super().collect())
        finally:
            nbval.plugin.nbformat = real
        yield from cells
        yield NotebookBudget.from_parent(self, name="budget")


class NotebookBudget(pytest.Item):
    """Fails if the notebook ran past its time budget; saves the executed notebook."""

    def runtest(self):
        nbfile: ChapterNotebook = self.parent
        elapsed = time.perf_counter() - nbfile.started
        budget = notebook_budget_s()
        cells = [item for item in nbfile.session.items
                 if isinstance(item, IPyNbCell) and item.parent is nbfile]
        if nbfile.failed_cells:
            raise NotebookError(
                f"{nbfile.source}: cells {nbfile.failed_cells} failed; executed copy not saved"
            )
        if any(cell.test_outputs is None for cell in cells):
            pytest.skip(f"{nbfile.source}: not every cell ran (selection); executed copy not saved")
        TIMES[nbfile.source.as_posix()] = elapsed
        save_executed(nbfile, cells, widget_state(nbfile), elapsed)
        if elapsed > budget:
            raise NotebookError(
                f"{nbfile.source} took {elapsed:.0f} s, over its budget of {budget:.0f} s "
                "(GENLIB_NOTEBOOK_BUDGET_S); shrink its quick-mode training budget"
            )

    def reportinfo(self):
        return self.path, 0, f"{self.parent.source}::budget"

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class NotebookError(Exception):
    pass


def pytest_terminal_summary(terminalreporter) -> None:
    if not TIMES:
        return
    chapters: dict[str, float] = {}
    for source, seconds in TIMES.items():
        chapter = source.split("/")[1]
        chapters[chapter] = chapters.get(chapter, 0.0) + seconds
    terminalreporter.section("notebook execution times (first cell to last)")
    for source, seconds in sorted(TIMES.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {source}")
    for chapter, seconds in sorted(chapters.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  chapter {chapter} in total")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, IPyNbCell) and report.when == "call" and report.failed:
        parent = item.parent
        if isinstance(parent, ChapterNotebook):
            parent.failed_cells.append(item.cell_num)


def widget_state(nbfile: ChapterNotebook, timeout: float = 30.0) -> dict | None:
    """Ask the notebook's kernel for the state of its live widgets (None if it cannot say)."""
    kernel = nbfile.kernel
    if kernel is None or not kernel.is_alive():
        return None
    msg_id = kernel.execute_cell_input(_WIDGET_STATE_CODE, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    text = ""
    while True:
        msg = kernel.get_message("iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    for line in text.splitlines():
        if line.startswith("GENLIB_WIDGET_STATE="):
            return json.loads(line.split("=", 1)[1])
    return None


def save_executed(nbfile: ChapterNotebook, cells: list[IPyNbCell], state: dict | None,
                  elapsed: float) -> Path:
    """Write the notebook with nbval's outputs as ``_build/executed/<source>.ipynb``."""
    nb = read_chapter(nbfile.path)
    nb.metadata["genlib"]["elapsed_s"] = round(elapsed, 1)
    nb.metadata["genlib"]["quick"] = os.environ.get("GENLIB_QUICK", "1")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    if len(code_cells) != len(cells):
        raise NotebookError(
            f"{nbfile.source}: {len(code_cells)} code cells but {len(cells)} were run"
        )
    for count, (cell, item) in enumerate(zip(code_cells, cells, strict=True), start=1):
        cell.execution_count = count
        outputs = []
        for out in item.test_outputs:
            out = nbformat.from_dict(dict(out))
            if out.output_type == "execute_result":
                out.execution_count = count
            outputs.append(out)
        cell.outputs = outputs
    if state and state.get("state"):
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": state}
    nbformat.validate(nb)
    target = EXECUTED_DIR / nbfile.source.with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, target)
    return target
