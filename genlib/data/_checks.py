"""Argument checks shared by the loaders: every message names the argument, the value received
and what was expected."""

from __future__ import annotations

import numbers

import torch


def check_choice(arg: str, value: object, allowed: tuple[str, ...], *, what: str = "") -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        where = f" of {what}" if what else ""
        raise ValueError(
            f"{arg}{where} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def check_int(arg: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{arg} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}; got {value}")
    return int(value)


def make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """The generator a stochastic loader draws from.

    ``generator`` is used as is (its state advances); otherwise a fresh CPU generator seeded with
    ``seed`` (0 when None), so that a call without either is reproducible.
    """
    if generator is not None:
        if seed is not None:
            raise ValueError(
                f"pass either seed or generator, not both; got seed={seed!r} and a generator"
            )
        if not isinstance(generator, torch.Generator):
            raise ValueError(
                f"generator must be a torch.Generator or None; got {type(generator).__name__}"
            )
        return generator
    seed = 0 if seed is None else check_int("seed", seed, minimum=0)
    return torch.Generator().manual_seed(seed)
