"""genlib.viz.curves: history shapes, the data each line carries, EMA smoothing, log scale."""

import numpy as np
import pytest
import torch

from genlib.viz.curves import ema_smooth, history_series, plot_history


def _lines(ax):
    """{label: (x, y)} of the labelled (legend) lines on ax."""
    return {
        ln.get_label(): (np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata()))
        for ln in ax.get_lines()
        if not ln.get_label().startswith("_")
    }


def test_dict_of_lists_one_line_per_key_with_its_data():
    history = {"loss": [3.0, 2.0, 1.5, 1.2], "acc": [0.1, 0.4, 0.6, 0.7]}
    ax = plot_history(history)
    lines = _lines(ax)
    assert set(lines) == {"loss", "acc"} and len(ax.get_lines()) == 2
    np.testing.assert_array_equal(lines["loss"][0], [0, 1, 2, 3])
    np.testing.assert_array_equal(lines["loss"][1], history["loss"])
    np.testing.assert_array_equal(lines["acc"][1], history["acc"])
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "value"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["loss", "acc"]


def test_step_series_is_the_x_axis_and_single_key_names_the_y_axis():
    history = {"step": [0, 50, 100], "loss": torch.tensor([2.0, 1.0, 0.5]), "lr": [1e-3] * 3}
    ax = plot_history(history, keys="loss", title="training")
    lines = _lines(ax)
    assert list(lines) == ["loss"]
    np.testing.assert_array_equal(lines["loss"][0], [0, 50, 100])
    np.testing.assert_allclose(lines["loss"][1], [2.0, 1.0, 0.5])
    assert ax.get_ylabel() == "loss" and ax.get_title() == "training"
    assert ax.get_legend() is None


def test_list_of_records_with_sparse_metrics():
    records = [
        {"step": 0, "loss": 2.0, "fid": 90.0, "phase": "warmup"},
        {"step": 10, "loss": torch.tensor(1.5)},
        {"step": 20, "loss": 1.0, "fid": None},
        {"step": 30, "loss": np.float32(0.75), "fid": 40.0, "phase": "main"},
    ]
    series = history_series(records)
    assert set(series) == {"loss", "fid"}  # "phase" is not numeric, "step" is the x axis
    lines = _lines(plot_history(records))
    np.testing.assert_array_equal(lines["loss"][0], [0, 10, 20, 30])
    np.testing.assert_allclose(lines["loss"][1], [2.0, 1.5, 1.0, 0.75])
    np.testing.assert_array_equal(lines["fid"][0], [0, 30])
    np.testing.assert_array_equal(lines["fid"][1], [90.0, 40.0])


def test_records_without_step_use_their_index():
    lines = _lines(plot_history([{"loss": 3.0}, {"loss": 2.0}, {"loss": 1.0}]))
    np.testing.assert_array_equal(lines["loss"][0], [0, 1, 2])


def test_pairs_and_as_dict_objects():
    class History:
        def as_dict(self):
            return {"loss": [(0, 1.0), (5, 0.5), (9, 0.25)]}

    lines = _lines(plot_history(History()))
    np.testing.assert_array_equal(lines["loss"][0], [0, 5, 9])
    np.testing.assert_array_equal(lines["loss"][1], [1.0, 0.5, 0.25])


def test_objects_with_names_and_series_and_time_left_out_by_default():
    class History:  # the interface of genlib.train's History, without importing it
        records = [
            {"step": 0, "loss": 2.0, "time": 0.1},
            {"step": 5, "loss": 1.0, "time": 0.2, "fid": 30.0},
        ]

        @property
        def names(self):
            return ["loss", "time", "fid"]

        def series(self, name):
            pairs = [(r["step"], r[name]) for r in self.records if name in r]
            return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    ax = plot_history(History())
    lines = _lines(ax)
    assert list(lines) == ["loss", "fid"]  # "time" counts up and would squash the loss
    np.testing.assert_array_equal(lines["loss"][0], [0, 5])
    np.testing.assert_array_equal(lines["fid"][1], [30.0])
    lines = _lines(plot_history(History(), keys=["time"]))
    np.testing.assert_array_equal(lines["time"][1], [0.1, 0.2])


def test_ema_smooth_is_the_debiased_weighted_average():
    x = np.random.default_rng(0).normal(size=50)
    w = 0.9
    out = ema_smooth(x, w)
    for t in range(1, len(x) + 1):
        weights = (1 - w) * w ** np.arange(t - 1, -1, -1)  # x_1 ... x_t
        np.testing.assert_allclose(out[t - 1], weights @ x[:t] / (1 - w**t))
    np.testing.assert_allclose(ema_smooth(np.full(20, 3.0), 0.99), 3.0)  # no pull towards 0
    np.testing.assert_array_equal(ema_smooth(x, 0.0), x)
    with pytest.raises(ValueError, match="smooth"):
        ema_smooth(x, 1.0)


def test_ema_smooth_skips_nans():
    out = ema_smooth([1.0, np.nan, 3.0], 0.5)
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], ema_smooth([1.0, 3.0], 0.5))


def test_smoothed_plot_keeps_raw_faint_and_labels_the_smooth_line():
    y = list(np.random.default_rng(1).normal(size=30) + 5)
    ax = plot_history({"loss": y}, smooth=0.8)
    raw, smooth = ax.get_lines()
    assert raw.get_label().startswith("_") and raw.get_alpha() < 1
    assert smooth.get_label() == "loss" and smooth.get_color() == raw.get_color()
    np.testing.assert_array_equal(raw.get_ydata(), y)
    np.testing.assert_allclose(smooth.get_ydata(), ema_smooth(y, 0.8))


def test_ema_weight_follows_the_step_gap_for_sparse_metrics():
    rng = np.random.default_rng(2)
    val = rng.normal(size=12)
    steps = np.arange(12) * 10
    # a gap of 10 steps with a unit of 1 step is ten EMA updates' worth of decay
    np.testing.assert_allclose(
        ema_smooth(val, 0.9, steps=steps, step_unit=1), ema_smooth(val, 0.9**10)
    )
    np.testing.assert_allclose(ema_smooth(val, 0.9, steps=steps), ema_smooth(val, 0.9))  # unit 10
    irregular = np.array([0, 1, 5, 6, 20, 21])
    np.testing.assert_allclose(ema_smooth(np.full(6, 2.0), 0.7, steps=irregular), 2.0)
    # in a plot, the finest logging interval (the loss, every step) is the unit for all metrics
    history = [{"step": i, "loss": float(rng.normal())} for i in range(120)]
    for i in range(0, 120, 10):
        history[i]["val"] = float(val[i // 10])
    lines = _lines(plot_history(history, smooth=0.9))
    np.testing.assert_array_equal(lines["val"][0], steps)
    np.testing.assert_allclose(lines["val"][1], ema_smooth(val, 0.9**10))


def test_log_scale_and_its_check():
    ax = plot_history({"loss": [1.0, 0.1, 0.01]}, logy=True)
    assert ax.get_yscale() == "log"
    assert ax.yaxis.get_major_formatter()(0.01) == "0.01"  # plain numbers, not 10^-2
    with pytest.raises(ValueError, match=r"logy=True needs positive values, but metric 'g'"):
        plot_history({"g": [1.0, -1.0]}, logy=True)


def test_unknown_key_lists_the_valid_ones():
    match = r"no metric 'los' in history; valid keys: \['acc', 'loss'\]"
    with pytest.raises(KeyError, match=match):
        plot_history({"loss": [1.0], "acc": [0.5]}, keys=["los"])


@pytest.mark.parametrize(
    ("history", "kwargs", "exc", "match"),
    [
        ("loss", {}, TypeError, "history must be a mapping"),
        ([{"loss": 1.0}, 3.0], {}, TypeError, r"history\[1\] is float"),
        ({"name": ["a", "b"]}, {}, ValueError, "no numeric metric"),
        ({"loss": [1.0, 2.0]}, {"smooth": 1.5}, ValueError, r"smooth .* \[0, 1\)"),
        ([{"step": "x", "loss": 1.0}], {}, ValueError, r"history\[0\]\['step'\]"),
    ],
)
def test_bad_history_arguments(history, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        plot_history(history, **kwargs)
