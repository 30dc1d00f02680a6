"""Interactive widgets that always come with a static twin for the printed book.

Every chapter's widget goes through :func:`interactive_with_static`. One drawing function
``plot_fn(ax, **params)`` serves both views:

1. the **static figure**: a row (or grid) of small panels, one per entry of ``static_values``,
   each titled with its parameter values. It is a plain PNG in the notebook output, so the
   static book (HTML without a kernel, PDF, print) shows the same story the slider tells;
2. the **widget**: one control per keyword (slider, dropdown, checkbox) above an ``Output``
   that holds the figure for the current values, redrawn whenever a control changes.

How the executed notebook and the built book look: in a Jupyter kernel (a reader's JupyterLab,
and the book build, which executes notebooks in a kernel) both are displayed, the static
figure first. With ``nb_ipywidgets_js`` configured the book embeds the widget's state, so the
controls and the figure for the initial values appear, but moving a control redraws nothing
(there is no Python behind the page); a line under the controls says so, and the static figure
is what a reader of the book relies on. Outside a kernel (scripts, tests) nothing is
displayed; the returned :class:`InteractiveFigure` holds both views for inspection. Without
ipywidgets only the static figure is built, and a note says how to get the interactive one.
"""

from __future__ import annotations

import base64
import inspect
import io
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure

PlotFn = Callable[..., Any]

NOTE_NO_IPYWIDGETS = (
    "Note: ipywidgets is not installed, so only the static figure is shown. "
    "Install it (pip install ipywidgets) and run the notebook in Jupyter for the interactive "
    "version."
)
NOTE_STATIC_BOOK = (
    "<i>Move the controls to redraw (this needs a running Python kernel; in the static book "
    "the panels above show the same figure at fixed values).</i>"
)


@dataclass(frozen=True)
class Control:
    """One interactive parameter, parsed from a keyword of :func:`interactive_with_static`.

    Specs: ``(low, high)`` or ``(low, high, step)`` of ints -> ``"int"`` slider, with any
    float -> ``"float"`` slider (step defaults to 1 for ints, ``(high - low) / 100`` for
    floats); a ``list`` of options -> ``"choice"`` dropdown; ``True``/``False`` -> ``"bool"``
    checkbox (the spec is the initial value); an ipywidgets widget -> ``"widget"``, used as is.
    """

    name: str
    kind: Literal["int", "float", "choice", "bool", "widget"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple[Any, ...] = ()
    default: Any = None
    widget: Any = field(default=None, compare=False, repr=False)

    def check(self, value: Any, where: str) -> None:
        """Raise ValueError if ``value`` is not one this control can take."""
        if self.kind in ("int", "float") or (
            self.kind == "widget" and self.low is not None and self.high is not None
        ):
            ok_type = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if self.kind == "int":
                ok_type = ok_type and isinstance(value, numbers.Integral)
            if not ok_type or not self.low <= value <= self.high:
                raise ValueError(
                    f"{where}: {self.name}={value!r} is outside the control's range; expected "
                    f"{'an int' if self.kind == 'int' else 'a number'} in "
                    f"[{self.low}, {self.high}]"
                )
        elif self.kind == "choice" and value not in self.options:
            raise ValueError(
                f"{where}: {self.name}={value!r} is not one of the options {list(self.options)}"
            )
        elif self.kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{where}: {self.name}={value!r} must be True or False")


def parse_control(name: str, spec: Any) -> Control:
    """Turn a keyword spec such as ``t=(0, 1000, 10)`` or ``schedule=["linear", "cosine"]``
    into a :class:`Control` (see its docstring for the accepted specs)."""
    if isinstance(spec, bool):
        return Control(name, "bool", default=spec)
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"control {name!r}: the list of options is empty")
        return Control(name, "choice", options=tuple(spec), default=spec[0])
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in spec
        ):
            raise ValueError(
                f"control {name!r}: a tuple spec must be (low, high) or (low, high, step) of "
                f"numbers; got {spec!r} (use a list for a dropdown of options)"
            )
        low, high = spec[0], spec[1]
        is_int = all(isinstance(v, numbers.Integral) for v in spec)
        step = spec[2] if len(spec) == 3 else (1 if is_int else (high - low) / 100)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"control {name!r}: need finite low < high; got {spec!r}")
        if not (math.isfinite(step) and 0 < step <= high - low):
            raise ValueError(
                f"control {name!r}: step must be in (0, high - low]; got {step!r} in {spec!r}"
            )
        kind: Literal["int", "float"] = "int" if is_int else "float"
        cast = int if is_int else float
        return Control(
            name, kind, low=cast(low), high=cast(high), step=cast(step), default=cast(low)
        )
    if hasattr(spec, "value") and hasattr(spec, "observe"):  # an ipywidgets widget
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        return Control(name, "widget", low=low, high=high, default=spec.value, widget=spec)
    raise ValueError(
        f"control {name!r}: unsupported spec {spec!r}; expected (low, high[, step]) for a "
        "slider, a list of options for a dropdown, True/False for a checkbox, or a widget"
    )


def _static_panels(
    static_values: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> list[dict[str, Any]]:
    """One dict per panel from a list of dicts or a dict of equally long lists (zipped)."""
    if isinstance(static_values, Mapping):
        lengths = {}
        for k, v in static_values.items():
            if isinstance(v, str) or not isinstance(v, Sequence):
                raise ValueError(
                    f"static_values as a dict must map names to lists of values; "
                    f"static_values[{k!r}] is {v!r}"
                )
            lengths[k] = len(v)
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"static_values as a dict must have lists of one length (one entry per "
                f"panel); got lengths {lengths}"
            )
        n = next(iter(lengths.values()), 0)
        panels = [{k: static_values[k][i] for k in static_values} for i in range(n)]
    elif isinstance(static_values, Sequence) and not isinstance(static_values, str):
        panels = []
        for i, p in enumerate(static_values):
            if not isinstance(p, Mapping):
                raise ValueError(
                    f"static_values as a list must hold one dict per panel; "
                    f"static_values[{i}] is {p!r}"
                )
            panels.append(dict(p))
    else:
        raise ValueError(
            "static_values must be a list of dicts (one per panel) or a dict of lists; "
            f"got {type(static_values).__name__}"
        )
    if not panels:
        raise ValueError(
            "static_values must give at least one panel: the static figure is what the "
            "printed book shows"
        )
    return panels


def format_params(params: Mapping[str, Any]) -> str:
    """``"t=250, beta=0.02"``: the panel title for a set of values (floats to 3 significant
    digits, whole floats as ``1.0`` so they still read as floats)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if v.is_integer() and abs(v) < 1e6 else f"{v:.3g}"
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def _title_panel(ax: Axes, params: Mapping[str, Any]) -> None:
    label = format_params(params)
    existing = ax.get_title()
    ax.set_title(f"{existing}\n{label}" if existing else label, fontsize=10)


def figure_png(fig: Figure, dpi: float = 110) -> bytes:
    """The PNG bytes of ``fig`` (how both views reach the notebook, whatever the backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def in_notebook_kernel() -> bool:
    """True when running inside a Jupyter kernel (JupyterLab, nbclient, the book build)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


@dataclass(eq=False)
class InteractiveFigure:
    """What :func:`interactive_with_static` built: the static twin and the live widget.

    ``static_figure`` has one panel per ``static_params`` entry (``static_axes[k]`` drawn by
    ``plot_fn(ax, **fixed, **static_params[k])``). ``widget`` is the ipywidgets box (None
    without ipywidgets): ``inputs[name]`` are its controls and ``output`` holds a PNG of
    ``live_figure``, redrawn for :attr:`params` whenever a control's ``value`` changes.
    """

    plot_fn: PlotFn
    static_figure: Figure
    static_axes: list[Axes]
    static_params: list[dict[str, Any]]
    controls: dict[str, Control]
    fixed: dict[str, Any]
    widget: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    live_figure: Figure | None = None
    dpi: float = 110
    note: str | None = None
    displayed: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """The controls' current values."""
        return {name: w.value for name, w in self.inputs.items()}

    def redraw(self, change: Any = None) -> None:
        """Redraw ``live_figure`` for the current values and put its PNG in ``output``."""
        if self.live_figure is None:
            return
        params = self.params
        fig = self.live_figure
        fig.clear()
        ax = fig.add_subplot()
        self.plot_fn(ax, **self.fixed, **params)
        _title_panel(ax, params)
        png = base64.b64encode(figure_png(fig, self.dpi)).decode("ascii")
        # An Output widget's `outputs` is synced with the page: this works with or without a
        # kernel and is saved in the notebook's widget state (what the built book embeds).
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": png, "text/plain": f"<figure: {format_params(params)}>"},
                "metadata": {},
            },
        )

    def display(self) -> None:
        """Display the static figure, then (in a kernel, with ipywidgets) the widget."""
        from IPython.display import Image
        from IPython.display import display as ipy_display

        ipy_display(Image(data=figure_png(self.static_figure, self.dpi), format="png"))
        if self.widget is not None and in_notebook_kernel():
            ipy_display(self.widget)
        self.displayed = True

    def _ipython_display_(self) -> None:
        # Already shown when it was built (in a kernel): showing it again as the cell's last
        # expression would print every figure twice.
        if not self.displayed:
            self.display()


def _check_plot_fn(plot_fn: PlotFn, names: Sequence[str]) -> None:
    if not callable(plot_fn):
        raise TypeError(f"plot_fn must be callable as plot_fn(ax, **params); got {plot_fn!r}")
    try:
        sig = inspect.signature(plot_fn)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [n for n in names if n not in accepted]
    if missing:
        raise ValueError(
            f"plot_fn must accept the keyword arguments {missing}; its signature is "
            f"{plot_fn.__name__ if hasattr(plot_fn, '__name__') else 'plot_fn'}{sig}"
        )


def _make_input(ipw: Any, c: Control, value: Any, continuous_update: bool) -> Any:
    style = {"description_width": "initial"}
    if c.kind == "int":
        return ipw.IntSlider(
            value=value,
            min=c.low,
            max=c.high,
            step=c.step,
            description=c.name,
            continuous_update=continuous_update,
            style=style,
        )
    if c.kind == "float":
        return ipw.FloatSlider(
            value=value,
            min=c.low,
            max=c.high,
            step=c.step,
            description=c.name,
            continuous_update=continuous_update,
            style=style,
        )
    if c.kind == "choice":
        return ipw.Dropdown(options=list(c.options), value=value, description=c.name, style=style)
    if c.kind == "bool":
        return ipw.Checkbox(value=value, description=c.name, style=style)
    c.widget.value = value
    return c.widget


def interactive_with_static(
    plot_fn: PlotFn,
    *,
    static_values: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    fixed: Mapping[str, Any] | None = None,
    title: str | None = None,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (3.0, 3.0),
    live_size: tuple[float, float] = (5.0, 4.0),
    show: bool | None = None,
    continuous_update: bool = False,
    dpi: float = 110,
    **controls: Any,
) -> InteractiveFigure:
    """A widget for exploring ``plot_fn`` and, always, its static twin for the book.

    ``plot_fn(ax, **fixed, **params)`` draws one state on ``ax``. Each remaining keyword is a
    control (see :class:`Control`), e.g. ``t=(0, 1000, 10)``, ``beta=(0.0, 1.0)``,
    ``schedule=["linear", "cosine"]``, ``ema=True``. ``static_values`` lists the states of the
    static figure, as ``[{"t": 0}, {"t": 500}, {"t": 1000}]`` or ``{"t": [0, 500, 1000]}``;
    a panel that leaves a control out uses its initial value, which is the first panel's
    value where given (else the slider's low end, the first option, or the checkbox spec).
    Panels are laid out ``ncols`` per row (default: up to 4) at ``panel_size`` inches each,
    titled with the values that differ between panels, e.g. ``"t=500"`` (below any title
    ``plot_fn`` set); ``title`` and the values all panels share, e.g. ``"(schedule=linear)"``,
    go above them all.

    ``show=None`` displays both views only inside a Jupyter kernel (see the module docstring
    for what the built book shows); ``True``/``False`` force it. Returns the
    :class:`InteractiveFigure`.
    """
    if not controls:
        raise ValueError(
            "interactive_with_static needs at least one control keyword, e.g. t=(0, 1000, 10)"
        )
    fixed = dict(fixed or {})
    clash = sorted(set(fixed) & set(controls))
    if clash:
        raise ValueError(f"fixed and the controls both set {clash}; give each name once")
    specs = {name: parse_control(name, spec) for name, spec in controls.items()}
    panels = _static_panels(static_values)
    for i, panel in enumerate(panels):
        unknown = sorted(set(panel) - set(specs))
        if unknown:
            raise ValueError(
                f"static_values[{i}] sets {unknown}, which are not controls; valid names: "
                f"{sorted(specs)}"
            )
        for name, value in panel.items():
            specs[name].check(value, f"static_values[{i}]")
    _check_plot_fn(plot_fn, [*fixed, *specs])
    if ncols is not None and (not isinstance(ncols, int) or ncols < 1):
        raise ValueError(f"ncols must be None or an int >= 1; got {ncols!r}")

    initial = {}
    for name, c in specs.items():
        initial[name] = next((p[name] for p in panels if name in p), c.default)
    static_params = [{name: p.get(name, initial[name]) for name in specs} for p in panels]

    # (a) the static twin: one panel per static value. Panel titles show what differs between
    # panels; values that all panels share go once into the suptitle.
    varying = [k for k in specs if any(p[k] != static_params[0][k] for p in static_params)]
    if not varying:
        varying = list(specs)
    shared = {k: static_params[0][k] for k in specs if k not in varying}
    n = len(static_params)
    cols = min(n, ncols or 4)
    rows = math.ceil(n / cols)
    fig = Figure(
        figsize=(panel_size[0] * cols, panel_size[1] * rows + (0.4 if title or shared else 0)),
        layout="constrained",
        dpi=dpi,
    )
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    axes = axes[:n]
    for ax, params in zip(axes, static_params, strict=True):
        plot_fn(ax, **fixed, **params)
        _title_panel(ax, {k: params[k] for k in varying})
    suptitle = " ".join(
        part for part in (title, f"({format_params(shared)})" if shared else None) if part
    )
    if suptitle:
        fig.suptitle(suptitle)

    result = InteractiveFigure(plot_fn, fig, axes, static_params, specs, fixed, dpi=dpi)

    # (b) the live widget, if ipywidgets is there
    try:
        import ipywidgets as ipw
    except ImportError:
        result.note = NOTE_NO_IPYWIDGETS
        print(NOTE_NO_IPYWIDGETS)
    else:
        result.inputs = {
            name: _make_input(ipw, c, initial[name], continuous_update) for name, c in specs.items()
        }
        result.output = ipw.Output()
        result.live_figure = Figure(figsize=live_size, layout="constrained", dpi=dpi)
        result.widget = ipw.VBox(
            [*result.inputs.values(), ipw.HTML(NOTE_STATIC_BOOK), result.output]
        )
        result.redraw()
        for w in result.inputs.values():
            w.observe(result.redraw, names="value")

    if show if show is not None else in_notebook_kernel():
        result.display()
    return result
