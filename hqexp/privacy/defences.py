"""Defences of the client side in split learning, applied where the client computes:

* NoPeek (Vepakomma et al. 2020): ``nopeek_weight × dCor(x, a)`` added to the client's loss, so
  the activations ``a`` it sends depend less on the raw input ``x``;
* Gaussian noise of standard deviation ``noise_std`` added to the activations before they are sent;
* DP-SGD (Abadi et al. 2016) on the client model through Opacus: per-sample gradients clipped to
  ``max_grad_norm`` and noised with ``noise_multiplier`` (or the multiplier that reaches
  ``target_epsilon`` over the run); ε at ``delta`` from Opacus's RDP accountant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from hqexp.errors import ConfigError
from hqexp.privacy.dcor import dcor


@dataclass
class ClientDefence:
    nopeek_weight: float = 0.0
    noise_std: float = 0.0
    dp: Mapping | None = None  # {enabled, noise_multiplier, max_grad_norm, target_epsilon, delta}
    seed: int = 0
    _gen: torch.Generator | None = field(default=None, repr=False)
    accountants: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for key in ("nopeek_weight", "noise_std"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"privacy.{key} must be a number >= 0, got {v!r}")
        self._gen = torch.Generator().manual_seed(self.seed + 7919)

    @property
    def dp_enabled(self) -> bool:
        return bool(self.dp and self.dp.get("enabled"))

    @property
    def active(self) -> bool:
        return self.nopeek_weight > 0 or self.noise_std > 0 or self.dp_enabled

    def transmit(self, a: torch.Tensor) -> torch.Tensor:
        """What the client sends: the activations, plus noise when ``noise_std > 0``."""
        if self.noise_std <= 0:
            return a
        return a + self.noise_std * torch.randn(a.shape, generator=self._gen).to(a)

    def extra_loss(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor | None:
        """NoPeek's term for the client's backward, or None."""
        if self.nopeek_weight <= 0 or len(x) < 2:
            return None
        return self.nopeek_weight * dcor(x, a).to(a.dtype)

    # ------------------------------------------------------------ DP-SGD
    def wrap(self, module: nn.Module) -> nn.Module:
        """The module to run forward passes with: Opacus's per-sample-gradient wrapper under DP."""
        if not self.dp_enabled:
            return module
        from opacus import GradSampleModule

        return GradSampleModule(module)

    def optimizer(
        self, opt: torch.optim.Optimizer, batch_size: int, sample_rate: float, steps: int, key: object
    ) -> torch.optim.Optimizer:
        """``opt`` as an Opacus DP optimizer with its own RDP accountant (under DP), else as is."""
        if not self.dp_enabled:
            return opt
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer

        dp = self.dp
        sigma = dp.get("noise_multiplier")
        if dp.get("target_epsilon"):
            sigma = get_noise_multiplier(
                target_epsilon=float(dp["target_epsilon"]),
                target_delta=float(dp["delta"]),
                sample_rate=sample_rate,
                steps=max(1, steps),
                accountant="rdp",
            )
        dpo = DPOptimizer(
            opt, noise_multiplier=float(sigma), max_grad_norm=float(dp["max_grad_norm"]), expected_batch_size=batch_size
        )
        acc = RDPAccountant()
        dpo.attach_step_hook(acc.get_optimizer_hook_fn(sample_rate=sample_rate))
        self.accountants[key] = (acc, float(sigma))
        return dpo

    def epsilon(self) -> float | None:
        """The largest ε (at ``dp.delta``) any client has spent so far."""
        if not self.accountants:
            return None
        return max(acc.get_epsilon(float(self.dp["delta"])) for acc, _ in self.accountants.values())

    def noise_multiplier(self) -> float | None:
        return max((s for _, s in self.accountants.values()), default=None)
