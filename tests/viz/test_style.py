"""genlib.viz.style: the book style is applied only on request and the context restores it."""

import subprocess
import sys

import matplotlib as mpl

from genlib.viz.style import BOOK_RC, book_style, use_book_style


def test_book_style_context_applies_and_restores():
    before = dict(mpl.rcParams)
    with book_style():
        for key, value in BOOK_RC.items():
            assert mpl.rcParams[key] == value, key
    assert dict(mpl.rcParams) == before


def test_use_book_style_sets_the_global_settings():
    with mpl.rc_context():  # undo after the test
        use_book_style()
        assert mpl.rcParams["font.size"] == BOOK_RC["font.size"]
        assert mpl.rcParams["image.interpolation"] == "nearest"
        assert mpl.rcParams["axes.grid"] is False


def test_importing_genlib_viz_changes_no_setting():
    code = (
        "import matplotlib as mpl; before = dict(mpl.rcParams); import genlib.viz; "
        "assert dict(mpl.rcParams) == before; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
