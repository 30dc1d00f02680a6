"""Student versions of chapter notebooks: solutions and hidden tests removed.

The instructor's source (a jupytext MyST ``.md`` chapter) marks each solution::

    def log_likelihood(x, mu, sigma):
        ### BEGIN SOLUTION
        return ...
        ### END SOLUTION

and optionally hidden tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.
:func:`strip_solutions` replaces each solution by ``raise NotImplementedError(...)`` at the same
indentation and drops hidden tests, so the student version runs up to the exercises and its
check cells fail, with a message, until each function is written. ``genlib course export``
applies it to files or folders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB = 'raise NotImplementedError("Exercise: write your solution here")'

_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)(?P<begin>### BEGIN (?:SOLUTION|HIDDEN TESTS))[ \t]*\n"
    r"(?P<body>.*?)"
    r"^[ \t]*(?P<end>### END (?:SOLUTION|HIDDEN TESTS))[ \t]*\n?",
    re.MULTILINE | re.DOTALL,
)


def strip_solutions(text: str, *, source: str = "<text>") -> tuple[str, int]:
    """Return ``(student_text, n_solutions_removed)``.

    Raises ``ValueError`` naming ``source`` and the line if a marker is unmatched or nested.
    """
    _check_markers(text, source)
    removed = 0

    def replace(match: re.Match) -> str:
        nonlocal removed
        if match["begin"] != match["end"].replace("END", "BEGIN"):
            line = text[: match.start()].count("\n") + 1
            raise ValueError(f"{source}:{line}: {match['begin']!r} closed by {match['end']!r}")
        if match["begin"] == BEGIN_HIDDEN:
            return ""
        removed += 1
        return f"{match['indent']}{STUB}\n"

    return _BLOCK.sub(replace, text), removed


def _check_markers(text: str, source: str) -> None:
    open_marker, open_line = None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        mark = line.strip()
        if mark in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if open_marker:
                raise ValueError(f"{source}:{number}: {mark!r} inside {open_marker!r} opened on "
                                 f"line {open_line}; markers cannot nest")
            open_marker, open_line = mark, number
        elif mark in (END_SOLUTION, END_HIDDEN):
            if not open_marker:
                raise ValueError(f"{source}:{number}: {mark!r} without a matching BEGIN")
            open_marker = None
    if open_marker:
        raise ValueError(f"{source}:{open_line}: {open_marker!r} is never closed")


def export_student(sources: list[Path], out_dir: Path, *, root: Path | None = None) -> list[Path]:
    """Write student versions of ``sources`` (files or folders of ``.md``) under ``out_dir``.

    Paths are kept relative to ``root`` (default: the common parent). Returns written files.
    Refuses to write into a source folder, so an instructor's solutions are never overwritten.
    """
    files: list[Path] = []
    bases: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files.extend(sorted(p for p in src.rglob("*.md") if p.is_file()))
            bases.append(src.resolve())
        elif src.is_file():
            files.append(src)
            bases.append(src.resolve().parent)
        else:
            raise FileNotFoundError(f"sources: {src} does not exist")
    if not files:
        raise ValueError(f"sources: no .md files found in {[str(s) for s in sources]}")
    out_dir = Path(out_dir).resolve()
    resolved = [f.resolve() for f in files]
    base = Path(root).resolve() if root else Path(os.path.commonpath(bases))
    written = []
    for f in resolved:
        target = out_dir / f.relative_to(base)
        if target == f:
            raise ValueError(f"out_dir: {out_dir} would overwrite the source {f}")
        text, _ = strip_solutions(f.read_text(encoding="utf-8"), source=str(f))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
