"""The in-process engine: every client in this process, the same round loop for every protocol.

Per round: choose the participating clients (``fraction``), let the protocol train them
(``local_epochs`` passes over each client's data), evaluate the global model on the
validation split — pooled and per client — and hand the round's metrics to ``on_round``.
Gradient norms, barren-plateau indicators of the server's quantum layers and the time
spent inside them are measured here, as the Lightning callbacks do for ordinary training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from hqexp.callbacks.barren import GradientWindow
from hqexp.callbacks.gradnorm import grad_norms
from hqexp.federated.partition import Partition
from hqexp.federated.protocols import Protocol
from hqexp.models import quantum_layers
from hqexp.optim import RoundSchedule, build_optimizer, optimizer_spec
from hqexp.tracking.metrics import client_scores, task_scores


@dataclass
class Predictions:
    """Model outputs over one split: probabilities, targets, mean loss, forward ms/sample."""

    probs: torch.Tensor
    targets: torch.Tensor
    loss: float
    ms_per_sample: float


def predict(model: nn.Module, data: Dataset, batch_size: int, kind: str, loss_fn) -> Predictions:
    """Run ``model`` over ``data`` in evaluation mode."""
    model.eval()
    probs, ys, loss_sum, n, secs = [], [], 0.0, 0, 0.0
    with torch.no_grad():
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
            t0 = time.perf_counter()
            logits = model(x).float()
            secs += time.perf_counter() - t0
            loss_sum += float(loss_fn(logits, y)) * len(y)
            n += len(y)
            probs.append(logits.sigmoid() if kind == "multilabel" else logits.softmax(-1))
            ys.append(y)
    return Predictions(torch.cat(probs), torch.cat(ys), loss_sum / max(n, 1), 1e3 * secs / max(n, 1))


class QuantumTimer:
    """Seconds spent in the forward and backward passes of every QuantumLayer in ``modules``."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.seconds = 0.0
        self._t: dict[int, float] = {}
        self._handles = []
        for m in modules:
            for q in quantum_layers(m).values():
                self._handles += [
                    q.register_forward_pre_hook(self._start),
                    q.register_forward_hook(self._stop),
                    q.register_full_backward_pre_hook(self._start_bwd),
                    q.register_full_backward_hook(self._stop_bwd),
                ]

    def _start(self, module, *_):
        self._t[id(module)] = time.perf_counter()

    def _stop(self, module, *_):
        self.seconds += time.perf_counter() - self._t.pop(id(module), time.perf_counter())

    def _start_bwd(self, module, *_):
        self._t[-id(module)] = time.perf_counter()

    def _stop_bwd(self, module, *_):
        self.seconds += time.perf_counter() - self._t.pop(-id(module), time.perf_counter())

    def close(self) -> None:
        for h in self._handles:
            h.remove()


@dataclass
class StepDiagnostics:
    """Gradient norms (per side) and barren-plateau indicators of the server's quantum
    layers, accumulated over a round's steps."""

    window: GradientWindow
    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0

    def __call__(self, parts: Mapping[str, nn.Module]) -> None:
        server = parts.get("server")
        quantum = (
            {}
            if server is None
            else {
                f"server.{name}": q.weights.grad
                for name, q in quantum_layers(server).items()
                if q.weights.grad is not None
            }
        )
        self.record({k: float(v) for k, v in grad_norms(parts.items()).items()}, quantum)

    def record(self, norms: Mapping[str, float], quantum_grads: Mapping[str, torch.Tensor]) -> None:
        """One step's side norms (``client``, ``server``, ``total``) and the server's quantum
        weight gradients — for steps whose sides ran in different processes."""
        for k, v in norms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.steps += 1
        for name, g in quantum_grads.items():
            self.window.push(name, g)

    def flush(self) -> dict[str, float]:
        out = {f"grad_norm/{k}": v / self.steps for k, v in self.sums.items()} if self.steps else {}
        out.update({f"grad_norm_epoch/{k[len('grad_norm/') :]}": v for k, v in out.items()})
        out.update(self.window.indicators())
        self.sums, self.steps = {}, 0
        return out


class Optimizers:
    """The run's optimizer (``conf/optim``) for every client and server side, at the learning
    rate the run's schedule (``conf/scheduler``, stepped once per round as Lightning steps it once
    per epoch) gives the round: the same objects an ordinary run builds (:mod:`hqexp.optim`)."""

    def __init__(
        self,
        optim: Mapping | None,
        client_lr: float,
        server_lr: float,
        scheduler: Mapping | None,
        rounds: int,
    ) -> None:
        self.optim = optimizer_spec(optim)
        self.schedule = RoundSchedule(scheduler, {"client": float(client_lr), "server": float(server_lr)}, rounds)
        self.done = 0  # rounds completed
        self.val_losses: list[float] = []  # of the completed rounds (a plateau schedule reads them)

    def lr(self, role: str) -> float:
        return self.schedule.lr(role, self.done, self.val_losses)

    def __call__(self, params: list, role: str) -> torch.optim.Optimizer:
        opt = build_optimizer({**self.optim, "lr": self.lr(role)}, params)
        opt.param_groups[0]["role"] = role
        return opt

    def start_round(self, rnd: int, optimizers: list[torch.optim.Optimizer], val_losses: list[float] = ()) -> None:
        self.done, self.val_losses = rnd - 1, list(val_losses)
        for opt in optimizers:
            for g in opt.param_groups:
                g["lr"] = self.lr(g.get("role", "client"))


@dataclass
class Engine:
    """Runs ``rounds`` rounds of ``protocol`` over the clients of ``partition``."""

    protocol: Protocol
    partition: Partition
    data: Mapping[str, Dataset]  # train / val / test
    kind: str  # classification | multilabel
    n_classes: int
    loss_fn: Callable
    batch_size: int = 32
    rounds: int = 10
    local_epochs: int = 1
    fraction: float = 1.0
    seed: int = 0
    optimizers: Optimizers | None = None
    diagnostics: StepDiagnostics | None = None
    history: list[dict] = field(default_factory=list)

    def loaders(self) -> dict[int, DataLoader]:
        """One seeded, shuffled training loader per client."""
        out = {}
        for k, idx in enumerate(self.partition.clients["train"]):
            g = torch.Generator().manual_seed(self.seed * 1000 + k)
            out[k] = DataLoader(
                Subset(self.data["train"], idx.tolist()), batch_size=self.batch_size, shuffle=True, generator=g
            )
        return out

    def select(self, rnd: int) -> list[int]:
        """The clients of round ``rnd``: all, or a seeded ``fraction`` of them (at least one)."""
        K = self.partition.n_clients
        if self.fraction >= 1.0:
            return list(range(K))
        m = max(1, int(round(self.fraction * K)))
        rng = np.random.default_rng([self.seed, rnd])
        return sorted(rng.choice(K, m, replace=False).tolist())

    def evaluate(self, split: str) -> tuple[dict[str, float], Predictions]:
        """Pooled metrics (``<split>/…``) and per-client ``client/<k>/<split>/…`` with min/mean/max."""
        pred = predict(self.protocol.eval_model(), self.data[split], self.batch_size * 4, self.kind, self.loss_fn)
        out = {f"{split}/{k}": v for k, v in task_scores(self.kind, self.n_classes, pred.probs, pred.targets).items()}
        out[f"{split}/loss"] = pred.loss
        per: dict[str, list[float]] = {}
        for k, idx in enumerate(self.partition.clients[split]):
            if len(idx) == 0:
                continue
            t = torch.as_tensor(idx)
            for name, v in client_scores(self.kind, self.n_classes, pred.probs[t], pred.targets[t]).items():
                out[f"client/{k}/{split}/{name}"] = v
                per.setdefault(name, []).append(v)
        for name, vals in per.items():
            out[f"client/{split}/{name}_min"] = min(vals)
            out[f"client/{split}/{name}_mean"] = float(np.mean(vals))
            out[f"client/{split}/{name}_max"] = max(vals)
        return out, pred

    def fit(self, start_round: int = 0, on_round: Callable[[int, dict], None] | None = None) -> None:
        """Rounds ``start_round + 1 … rounds``; ``on_round(r, metrics)`` after each (1-based r)."""
        loaders = self.loaders()
        timer = QuantumTimer(self.protocol.server_modules())
        try:
            for rnd in range(start_round + 1, self.rounds + 1):
                self.protocol.s.channel.round = rnd
                if self.optimizers is not None:
                    losses = [h.get("val/loss", math.nan) for h in self.history]
                    self.optimizers.start_round(rnd, self.protocol.optimizers(), losses)
                timer.seconds = 0.0
                t0 = time.perf_counter()
                stats = self.protocol.train_round(self.select(rnd), loaders, self.local_epochs)
                wall = time.perf_counter() - t0
                metrics, _ = self.evaluate("val")
                metrics.update(
                    {
                        "train/loss": stats.loss,
                        "time/round_s": wall,
                        "time/client_s": stats.client_s,
                        "time/server_s": stats.server_s,
                        "time/server_quantum_s": timer.seconds,
                        "lr": self._lr_now(),
                    }
                )
                if self.diagnostics is not None:
                    metrics.update(self.diagnostics.flush())
                self.history.append({"round": rnd, **metrics})
                if on_round is not None:
                    on_round(rnd, metrics)
        finally:
            timer.close()

    def _lr_now(self) -> float:
        return self.optimizers.lr("client") if self.optimizers is not None else math.nan
