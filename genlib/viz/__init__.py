"""Figures for the book: image grids, training curves, 2D densities, widgets with static twins.

- :mod:`genlib.viz.grid`       :func:`make_grid`, :func:`show_images`, :func:`save_grid`
- :mod:`genlib.viz.curves`     :func:`plot_history` (metrics against steps)
- :mod:`genlib.viz.density2d`  :func:`plot_samples_2d`, :func:`plot_density_2d`
- :mod:`genlib.viz.widgets`    :func:`interactive_with_static` (every widget has a static figure)
- :mod:`genlib.viz.style`      :func:`use_book_style`, :func:`book_style`

Library functions draw on an ``ax`` they are given (or a new figure) and return it; they never
call ``plt.show()`` and importing this package changes no matplotlib setting.
"""

from genlib.viz.curves import ema_smooth, history_series, plot_history
from genlib.viz.density2d import density_grid, plot_density_2d, plot_samples_2d
from genlib.viz.grid import (
    as_image_batch,
    grid_figsize,
    grid_figure,
    make_grid,
    save_grid,
    show_images,
)
from genlib.viz.style import BOOK_RC, book_style, use_book_style
from genlib.viz.widgets import (
    Control,
    InteractiveFigure,
    in_notebook_kernel,
    interactive_with_static,
    parse_control,
)

__all__ = [
    "BOOK_RC",
    "Control",
    "InteractiveFigure",
    "as_image_batch",
    "book_style",
    "density_grid",
    "ema_smooth",
    "grid_figsize",
    "grid_figure",
    "history_series",
    "in_notebook_kernel",
    "interactive_with_static",
    "make_grid",
    "parse_control",
    "plot_density_2d",
    "plot_history",
    "plot_samples_2d",
    "save_grid",
    "show_images",
    "use_book_style",
]
