"""Exercise checks that explain a wrong answer in words.

Every exercise in the book is a function the student writes between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` markers, followed by a check cell::

    check_function(my_log_likelihood, reference=genlib_log_likelihood,
                   inputs=[(x1,), (x2,)], name="log_likelihood")

:func:`check_function` calls both on every input and, at the first difference, raises
:class:`ExerciseError` saying what differs (not implemented yet, an exception, a type, a shape,
a dtype, NaNs, or values) and on which input, so a student knows where to look. On success it
prints one line. The instructor's source runs with solutions in CI; the student export
(:mod:`genlib.course.export`) replaces the solutions with ``raise NotImplementedError`` so its
checks fail until the student fills them in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch


class ExerciseError(AssertionError):
    """A student's answer differs from the reference; the message says how."""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(torch.float64).numpy() if value.is_floating_point() \
            else value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | float | int | np.floating | np.integer):
        return np.asarray(value)
    return None


def compare(got: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-6,
            where: str = "the result") -> str | None:
    """Return ``None`` if ``got`` matches ``expected``, else a sentence saying how it differs.

    Tensors and arrays are compared by shape, then NaNs, then values (``|got - expected| <=
    atol + rtol * |expected|``); tuples and lists element by element; anything else with ``==``.
    """
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return (f"{where} should be a {type(expected).__name__} of {len(expected)} items, "
                    f"but it is {_describe(got)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = compare(g, e, rtol=rtol, atol=atol, where=f"item {i} of {where}")
            if problem:
                return problem
        return None
    exp = _as_array(expected)
    if exp is None:
        return None if got == expected else f"{where} is {got!r}, expected {expected!r}"
    if isinstance(expected, torch.Tensor) and not isinstance(got, torch.Tensor):
        return f"{where} should be a torch tensor, but it is {_describe(got)}"
    val = _as_array(got)
    if val is None:
        return f"{where} should be numeric like the reference ({_describe(expected)}), " \
               f"but it is {_describe(got)}"
    if val.shape != exp.shape:
        hint = ""
        if val.size == exp.size:
            hint = " (same number of entries: a reshape, a transpose or a missing sum/mean?)"
        elif val.ndim == exp.ndim + 1:
            hint = " (one dimension too many: did you forget to sum or average over one?)"
        elif val.ndim + 1 == exp.ndim:
            hint = " (one dimension too few: did you reduce over a dimension you should keep?)"
        return f"{where} has shape {val.shape}, expected {exp.shape}{hint}"
    if np.issubdtype(val.dtype, np.floating) and np.isnan(val).any() and not np.isnan(exp).any():
        return f"{where} contains NaN at {int(np.isnan(val).sum())} positions; the reference " \
               f"has none (a log of zero or of a negative number? a division by zero?)"
    if np.issubdtype(val.dtype, np.floating) and np.isinf(val).any() and not np.isinf(exp).any():
        return f"{where} is infinite at {int(np.isinf(val).sum())} positions; the reference " \
               f"is finite everywhere (an exp that underflowed to 0 before a log? work in log " \
               f"space with torch.logsumexp)"
    if not np.allclose(val, exp, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(val.astype(np.float64) - exp.astype(np.float64))
        i = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.ndim else ()
        at = f" at index {tuple(int(j) for j in i)}" if diff.ndim else ""
        ratio = ""
        ev, gv = float(exp[i]), float(val[i])
        if ev != 0 and gv != 0 and np.isfinite(gv):
            r = gv / ev
            if abs(r + 1) < 1e-3:
                ratio = " (the sign is flipped)"
            elif abs(r - round(r)) < 1e-3 and round(r) not in (0, 1):
                ratio = f" (exactly {round(r)} times too large: a missing division?)"
            elif abs(1 / r - round(1 / r)) < 1e-3 and round(1 / r) not in (0, 1):
                ratio = f" (exactly {round(1 / r)} times too small: an extra division?)"
        return (f"{where} differs from the reference{at}: you gave {gv:.6g}, expected {ev:.6g}"
                f"{ratio}; largest difference {float(np.nanmax(diff)):.3g}")
    return None


def check_function(student: Callable, reference: Callable, inputs: Iterable[Sequence[Any]], *,
                   name: str | None = None, rtol: float = 1e-5, atol: float = 1e-6,
                   verbose: bool = True) -> None:
    """Check ``student(*args)`` against ``reference(*args)`` on every ``args`` in ``inputs``.

    Raises :class:`ExerciseError` with a sentence saying what is wrong and on which input;
    prints one line saying how many inputs agreed when all do (returns None, so a check cell
    shows only that line).
    """
    if not callable(student):
        raise TypeError(f"student must be a function, got {_describe(student)}")
    if not callable(reference):
        raise TypeError(f"reference must be a function, got {_describe(reference)}")
    label = name or getattr(student, "__name__", "your function")
    cases = [tuple(args) for args in inputs]
    if not cases:
        raise ValueError("inputs must hold at least one tuple of arguments, got none")
    for n, args in enumerate(cases, start=1):
        expected = reference(*args)
        try:
            got = student(*args)
        except NotImplementedError:
            raise ExerciseError(
                f"{label} is not written yet: replace `raise NotImplementedError` with your "
                f"solution"
            ) from None
        except Exception as err:  # noqa: BLE001 - any error is the student's to see
            raise ExerciseError(
                f"{label} raised {type(err).__name__}: {err} (on input {n} of {len(cases)}: "
                f"{', '.join(_describe(a) for a in args)})"
            ) from err
        problem = compare(got, expected, rtol=rtol, atol=atol, where=f"the result of {label}")
        if problem:
            raise ExerciseError(
                f"{problem} (on input {n} of {len(cases)}: "
                f"{', '.join(_describe(a) for a in args)})"
            )
    if verbose:
        print(f"Correct: {label} matches the reference on {len(cases)} input(s).")
