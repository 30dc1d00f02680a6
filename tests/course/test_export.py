from pathlib import Path

import pytest

from genlib.course import export_student, strip_solutions
from genlib.course.checks import ExerciseError, check_function
from genlib.course.export import STUB

SOURCE = '''
```{code-cell} ipython3
def square_sum(x):
    """Sum of squares."""
    ### BEGIN SOLUTION
    return (x**2).sum()
    ### END SOLUTION
```

```{code-cell} ipython3
### BEGIN HIDDEN TESTS
assert square_sum(torch.ones(3)) == 3
### END HIDDEN TESTS
print("visible")
```
'''


def test_strip_replaces_solution_with_stub_at_same_indent():
    text, n = strip_solutions(SOURCE)
    assert n == 1
    assert '    raise NotImplementedError("Exercise: write your solution here")' in text
    assert "(x**2).sum()" not in text
    assert "HIDDEN" not in text and "assert square_sum" not in text
    assert 'print("visible")' in text and '"""Sum of squares."""' in text


def test_student_version_fails_its_check_and_instructor_version_passes():
    import torch

    ref = lambda x: (x**2).sum()  # noqa: E731
    for text, ok in ((SOURCE, True), (strip_solutions(SOURCE)[0], False)):
        code = text.split("```{code-cell} ipython3\n")[1].split("```")[0]
        scope = {}
        exec(code, scope)
        args = [(torch.arange(4.0),)]
        if ok:
            check_function(scope["square_sum"], ref, args, verbose=False)
        else:
            with pytest.raises(ExerciseError, match="not written yet"):
                check_function(scope["square_sum"], ref, args, verbose=False)


@pytest.mark.parametrize("bad, message", [
    ("### BEGIN SOLUTION\nx\n", "never closed"),
    ("x\n### END SOLUTION\n", "without a matching BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION\n",
     "cannot nest"),
])
def test_unbalanced_markers_name_the_line(bad, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(bad, source="ch.md")


def test_export_writes_tree_and_refuses_to_overwrite_sources(tmp_path):
    src = tmp_path / "src" / "01-ch"
    src.mkdir(parents=True)
    (src / "a.md").write_text(SOURCE)
    written = export_student([tmp_path / "src"], tmp_path / "student")
    assert [p.relative_to(tmp_path / "student").as_posix() for p in written] == ["01-ch/a.md"]
    assert "NotImplementedError" in written[0].read_text()
    assert "(x**2).sum()" in (src / "a.md").read_text()  # the source is untouched
    with pytest.raises(ValueError, match="would overwrite"):
        export_student([tmp_path / "src"], tmp_path / "src")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_student([tmp_path / "nope"], tmp_path / "out")


CHAPTER_EXERCISES = sorted((Path(__file__).parents[2] / "notebooks").glob("*/*exercises.md"))


@pytest.mark.parametrize("path", CHAPTER_EXERCISES, ids=lambda p: p.parent.name)
def test_every_chapter_exercise_notebook_exports_cleanly(path):
    """The student version of each chapter's exercises: its stubs (at least five; four in
    chapter 1), no solution or hidden test left in any code cell, and every code cell still
    compiles (a stub leaves valid Python)."""
    import jupytext

    student, removed = strip_solutions(path.read_text(), source=str(path))
    assert removed >= (4 if path.parent.name.startswith("01-") else 5), f"{removed} exercises"
    code = [c.source for c in jupytext.reads(student, fmt="md:myst").cells
            if c.cell_type == "code"]
    assert sum(src.count(STUB) for src in code) == removed
    for i, src in enumerate(code):
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
            assert marker not in src, f"cell {i}"
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        compile("\n".join(lines), f"{path.name}[cell {i}]", "exec")


def test_chapter_exercise_notebooks_are_found():
    assert len(CHAPTER_EXERCISES) >= 3
