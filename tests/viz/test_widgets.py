"""genlib.viz.widgets: the static twin's panels, the controls' ranges and redraw on change."""

import base64
import sys

import ipywidgets as ipw
import numpy as np
import pytest

import genlib.viz.widgets as widgets_mod
from genlib.viz.widgets import (
    NOTE_NO_IPYWIDGETS,
    Control,
    format_params,
    interactive_with_static,
    parse_control,
)


class Recorder:
    """plot_fn(ax, t, beta, schedule) that records its calls and draws t and beta as a line."""

    def __init__(self):
        self.calls = []

    def __call__(self, ax, t, beta, schedule="linear", scale=1.0):
        self.calls.append({"ax": ax, "t": t, "beta": beta, "schedule": schedule, "scale": scale})
        ax.plot([0, 1], [t * scale, beta])


def _png(output):
    (item,) = output.outputs
    data = base64.b64decode(item["data"]["image/png"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def test_static_panels_one_per_value_drawn_by_plot_fn_and_titled():
    rec = Recorder()
    view = interactive_with_static(
        rec,
        static_values=[{"t": 0, "beta": 0.1}, {"t": 500, "beta": 0.5}, {"t": 1000, "beta": 0.9}],
        t=(0, 1000, 10),
        beta=(0.0, 1.0),
        schedule=["linear", "cosine"],
        title="forward process",
    )
    assert len(view.static_axes) == 3 and view.static_figure.axes == view.static_axes
    # the value all panels share is said once, above them
    assert view.static_figure.get_suptitle() == "forward process (schedule=linear)"
    expected = [(0, 0.1), (500, 0.5), (1000, 0.9)]
    static_calls = rec.calls[:3]
    for ax, call, (t, beta) in zip(view.static_axes, static_calls, expected, strict=True):
        assert call["ax"] is ax and (call["t"], call["beta"]) == (t, beta)
        assert call["schedule"] == "linear"  # not given: the first option
        assert ax.get_title() == f"t={t}, beta={beta:.3g}"
        (line,) = ax.get_lines()
        np.testing.assert_array_equal(line.get_ydata(), [t, beta])
    assert view.static_params == [{"t": t, "beta": b, "schedule": "linear"} for t, b in expected]


def test_dict_of_lists_is_zipped_and_missing_values_take_the_initial_ones():
    rec = Recorder()
    view = interactive_with_static(
        rec, static_values={"t": [100, 200, 300, 400, 500]}, t=(0, 1000), beta=(0.2, 0.8)
    )
    assert [p["t"] for p in view.static_params] == [100, 200, 300, 400, 500]
    assert all(p["beta"] == 0.2 for p in view.static_params)  # the slider's low end
    assert [ax.get_title() for ax in view.static_axes] == [f"t={t}" for t in range(100, 600, 100)]
    assert view.static_figure.get_suptitle() == "(beta=0.2)"
    # 5 panels at up to 4 per row: 2 rows, the 3 unused cells removed
    assert len(view.static_figure.axes) == 5
    w, h = view.static_figure.get_size_inches()
    assert (w, h) == (4 * 3.0, 2 * 3.0 + 0.4)  # + the suptitle band
    # the widget starts at the first panel's values
    assert view.params == {"t": 100, "beta": 0.2}


def test_controls_have_the_given_ranges():
    view = interactive_with_static(
        Recorder(),
        static_values=[{"t": 10, "beta": 0.5, "schedule": "cosine"}],
        t=(0, 1000, 10),
        beta=(0.0, 1.0, 0.05),
        schedule=["linear", "cosine"],
    )
    t, beta, schedule = (view.inputs[k] for k in ("t", "beta", "schedule"))
    assert isinstance(t, ipw.IntSlider)
    assert (t.min, t.max, t.step, t.value) == (0, 1000, 10, 10)
    assert isinstance(beta, ipw.FloatSlider)
    assert (beta.min, beta.max, beta.step, beta.value) == (0.0, 1.0, 0.05, 0.5)
    assert isinstance(schedule, ipw.Dropdown)
    assert list(schedule.options) == ["linear", "cosine"] and schedule.value == "cosine"
    assert not t.continuous_update  # redraw on release: a matplotlib redraw is slow
    assert view.widget.children[: len(view.inputs)] == (t, beta, schedule)
    assert view.widget.children[-1] is view.output


def test_changing_a_control_redraws_with_the_new_values():
    rec = Recorder()
    view = interactive_with_static(
        rec,
        static_values=[{"t": 0, "beta": 0.1}],
        fixed={"scale": 2.0},
        t=(0, 1000, 10),
        beta=(0.0, 1.0),
    )
    # one static panel + the initial live drawing
    assert len(rec.calls) == 2 and rec.calls[1]["ax"].figure is view.live_figure
    first_png = _png(view.output)

    view.inputs["t"].value = 730
    assert len(rec.calls) == 3
    call = rec.calls[-1]
    assert (call["t"], call["beta"], call["scale"]) == (730, 0.1, 2.0)
    (ax,) = view.live_figure.axes
    assert ax is call["ax"] and ax.get_title() == "t=730, beta=0.1"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1460.0, 0.1])
    assert _png(view.output) != first_png

    view.inputs["beta"].value = 0.75
    assert (rec.calls[-1]["t"], rec.calls[-1]["beta"]) == (730, 0.75)
    assert len(view.live_figure.axes) == 1  # redrawn, not stacked


def test_checkbox_and_custom_widget_controls():
    calls = []

    def plot_fn(ax, ema, k):
        calls.append((ema, k))

    slider = ipw.IntSlider(min=1, max=9)
    view = interactive_with_static(
        plot_fn, static_values=[{"ema": False, "k": 3}, {"ema": True, "k": 5}], ema=True, k=slider
    )
    assert isinstance(view.inputs["ema"], ipw.Checkbox) and view.inputs["k"] is slider
    assert calls[:2] == [(False, 3), (True, 5)]
    assert [ax.get_title() for ax in view.static_axes] == ["ema=False, k=3", "ema=True, k=5"]
    slider.value = 8
    assert calls[-1] == (False, 8)
    with pytest.raises(ValueError, match=r"static_values\[0\]: k=12 is outside"):
        interactive_with_static(plot_fn, static_values=[{"k": 12}], ema=True, k=slider)


def test_parse_control_specs():
    assert parse_control("t", (0, 100)) == Control("t", "int", 0, 100, 1, default=0)
    c = parse_control("beta", (0, 1.0))
    assert (c.kind, c.low, c.high, c.step) == ("float", 0.0, 1.0, 0.01)
    assert parse_control("s", ["a", "b"]).options == ("a", "b")
    assert parse_control("flag", False) == Control("flag", "bool", default=False)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"static_values": [{"t": 2000}]}, ValueError, r"static_values\[0\]: t=2000 is outside"),
        ({"static_values": [{"t": 1.5}]}, ValueError, "expected an int in"),
        ({"static_values": [{"t": 1, "schedule": "x"}]}, ValueError, "not one of the options"),
        ({"static_values": [{"T": 1}]}, ValueError, r"sets \['T'\].*valid names: \['beta', "),
        ({"static_values": []}, ValueError, "at least one panel"),
        ({"static_values": {"t": [1, 2], "beta": [0.5]}}, ValueError, "lists of one length"),
        ({"static_values": [{"t": 1}], "t": (0, "a")}, ValueError, r"control 't': a tuple spec"),
        ({"static_values": [{"t": 1}], "t": (5, 5)}, ValueError, "need finite low < high"),
        ({"static_values": [{"t": 1}], "t": 3}, ValueError, "control 't': unsupported spec"),
        ({"static_values": [{"t": 1}], "fixed": {"t": 1}}, ValueError, r"both set \['t'\]"),
    ],
)
def test_bad_arguments_are_explained(kwargs, exc, match):
    args = {
        "t": (0, 1000, 10),
        "beta": (0.0, 1.0),
        "schedule": ["linear", "cosine"],
        **kwargs,
    }
    with pytest.raises(exc, match=match):
        interactive_with_static(Recorder(), **args)


def test_no_controls_and_plot_fn_missing_a_keyword():
    with pytest.raises(ValueError, match="at least one control"):
        interactive_with_static(Recorder(), static_values=[{}])

    def plot_fn(ax, t):
        pass

    with pytest.raises(ValueError, match=r"plot_fn must accept the keyword arguments \['beta'\]"):
        interactive_with_static(plot_fn, static_values=[{"t": 1}], t=(0, 9), beta=(0.0, 1.0))


def test_without_ipywidgets_only_the_static_figure_and_a_note(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now fails
    rec = Recorder()
    view = interactive_with_static(rec, static_values={"t": [1, 2]}, t=(0, 9), beta=(0.0, 1.0))
    assert view.widget is None and view.output is None and view.inputs == {}
    assert view.note == NOTE_NO_IPYWIDGETS
    assert NOTE_NO_IPYWIDGETS in capsys.readouterr().out
    assert len(view.static_axes) == 2 and len(rec.calls) == 2


def test_display_shows_static_always_and_the_widget_only_in_a_kernel(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    rec = Recorder()
    view = interactive_with_static(rec, static_values={"t": [1]}, t=(0, 9), beta=(0.0, 1.0))
    assert shown == [] and not view.displayed  # pytest is no kernel: nothing shown on build

    view._ipython_display_()
    (static,) = shown
    assert static.data[:8] == b"\x89PNG\r\n\x1a\n"  # the static twin, as PNG
    view._ipython_display_()  # already displayed: not twice
    assert len(shown) == 1

    monkeypatch.setattr(widgets_mod, "in_notebook_kernel", lambda: True)
    shown.clear()
    view = interactive_with_static(rec, static_values={"t": [1]}, t=(0, 9), beta=(0.0, 1.0))
    assert len(shown) == 2 and shown[1] is view.widget and view.displayed


def test_a_single_panel_is_titled_with_every_value():
    view = interactive_with_static(
        Recorder(), static_values=[{"t": 5, "beta": 0.5}], t=(0, 9), beta=(0.0, 1.0)
    )
    assert view.static_axes[0].get_title() == "t=5, beta=0.5"
    assert view.static_figure.get_suptitle() == ""


def test_format_params():
    assert format_params({"t": 10, "beta": 0.123456, "s": "cosine", "ema": True}) == (
        "t=10, beta=0.123, s=cosine, ema=True"
    )
    assert format_params({"a": 0.0, "b": 1000.0, "c": 2.5e-5, "d": 3e7}) == (
        "a=0.0, b=1000.0, c=2.5e-05, d=3e+07"
    )
