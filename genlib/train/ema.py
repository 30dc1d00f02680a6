"""Exponential moving average (EMA) of model weights.

After each optimizer step the shadow weights move a small step towards the live ones::

    theta_ema <- beta * theta_ema + (1 - beta) * theta          (book: eq. "ema" in chapter 6)

so after n updates ``theta_ema_n = beta^n theta_0 + (1 - beta) sum_k beta^(n-k) theta_k``: an
average over roughly the last ``1 / (1 - beta)`` steps. Sampling from the averaged weights gives
visibly better diffusion and GAN samples than the last iterate (Karras et al. 2022, "EDM";
Yazici et al. 2019). With ``warmup=True`` the decay grows as ``min(beta, (1 + n) / (10 + n))``
(the TensorFlow ``num_updates`` rule) so the average is not dominated by the random initial
weights in short runs.

Parameters are averaged; buffers (BatchNorm running statistics, counters) are copied, since they
are already running averages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from genlib.train.step import unwrap_model

__all__ = ["EMA"]


class EMA:
    """A shadow copy of a model's parameters and buffers, updated as an exponential average.

    Args:
        model: the model to average (DDP and ``torch.compile`` wrappers are looked through, so
            the shadow's keys are the plain module's ``state_dict`` keys).
        decay: beta in [0, 1); 0.999 averages over about the last 1,000 steps.
        warmup: use ``min(decay, (1 + n) / (10 + n))`` at update n (counted from 0).

    Example::

        ema = EMA(model, decay=0.999)
        ...  # after each optimizer step
        ema.update(model)
        with ema.averaged(model):
            samples = sampler(model, ...)
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = False) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float):
            raise TypeError(f"decay must be a float, got {decay!r}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        module = unwrap_model(model)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            k: v.detach().clone() for k, v in module.state_dict().items()
        }
        param_names = {n for n, _ in module.named_parameters(remove_duplicate=False)}
        self._averaged = [
            k for k, v in self.shadow.items() if k in param_names and v.is_floating_point()
        ]
        self._copied = [k for k in self.shadow if k not in set(self._averaged)]

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``'s current weights (call after each optimizer step)."""
        state = unwrap_model(model).state_dict()
        self._check_keys(state, "model")
        beta = self.current_decay()
        if self._averaged:
            # theta_ema + (1 - beta) (theta - theta_ema) = beta theta_ema + (1 - beta) theta
            torch._foreach_lerp_(
                [self.shadow[k] for k in self._averaged],
                [state[k] for k in self._averaged],
                1.0 - beta,
            )
        for k in self._copied:
            self.shadow[k].copy_(state[k])
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones (permanently)."""
        unwrap_model(model).load_state_dict(self.shadow)

    @contextlib.contextmanager
    def averaged(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the averaged weights into ``model``; the live ones come back on exit
        (also when the block raises)."""
        module = unwrap_model(model)
        live = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            module.load_state_dict(live)

    def state_dict(self) -> dict[str, Any]:
        """Plain state (tensors, numbers, a bool): safe for ``torch.load(weights_only=True)``."""
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": {k: v.clone() for k, v in self.shadow.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (tensors are copied onto the shadow's devices)."""
        missing = [k for k in ("decay", "warmup", "num_updates", "shadow") if k not in state]
        if missing:
            raise KeyError(f"EMA state is missing {missing}; it holds {sorted(state)}")
        self._check_keys(state["shadow"], "state['shadow']")
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])

    def _check_keys(self, state: Mapping[str, torch.Tensor], what: str) -> None:
        if state.keys() != self.shadow.keys():
            extra = sorted(set(state) - set(self.shadow))
            missing = sorted(set(self.shadow) - set(state))
            raise KeyError(
                f"{what} does not match the EMA's weights: missing {missing[:5]}, "
                f"unexpected {extra[:5]} (is it the model the EMA was made from?)"
            )
