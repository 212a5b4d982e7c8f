"""One client's side of a protocol when the client is another process or machine.

The in-process engine runs a client's steps inline; a remote client (a Flower ``ClientApp``,
see :mod:`hqexp.train.flower`) is driven by messages instead, and may live in a fresh
process for every message. :class:`ClientWorker` is that side, independent of the
messaging engine: its whole state (weights, optimiser, shuffling generator, the round's
batch plan and position) round-trips through :meth:`export` / :meth:`restore` as bytes
that never leave the client.

It reproduces the in-process engine exactly: the same seeded batch order as
``Engine.loaders`` (a loader over the client's indices with generator
``seed·1000 + k``), the run's optimizer (``conf/optim``) created on first use and its learning
rate set every round.
For split protocols the activation graph cannot wait across messages, so the client's
forward is recomputed before its backward with the same weights, random state and
normalisation statistics (BatchNorm running statistics are updated once, as in one pass).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from hqexp import safeload
from hqexp.callbacks.gradnorm import grad_norms
from hqexp.models import quantum_layers
from hqexp.optim import build_optimizer, optimizer_spec
from hqexp.quantum.tally import Counts, totals


class _Positions(Dataset):
    """``0 … n-1``: a loader over it draws the same shuffles as one over ``n`` samples."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class ClientWorker:
    """Client ``k``: ``data`` is its own training samples, ``module`` its side of the model."""

    def __init__(
        self,
        module: nn.Module,
        data: Dataset,
        k: int,
        batch_size: int,
        seed: int,
        optim: Mapping | None = None,
        loss_fn: Callable | None = None,
    ) -> None:
        self.module, self.data, self.k = module, data, k
        self.batch_size, self.optim, self.loss_fn = batch_size, optimizer_spec(optim), loss_fn
        self.gen = torch.Generator().manual_seed(seed * 1000 + k)
        self.opt: torch.optim.Optimizer | None = None
        self.plan: list[list[int]] = []
        self.t = 0
        self.client_s = 0.0
        self.norms: list[float] = []  # per step of this round: the client side's gradient L2 norm
        self.step_seed = 0
        self.rounds = 0
        # this round's circuits per quantum layer, as a device would run them: [circuits, shots, exact]
        self.circuits: dict[str, list[int]] = {}

    # ------------------------------------------------------------ persistence
    def export(self) -> bytes:
        """Everything needed to carry on in another process."""
        buf = io.BytesIO()
        torch.save(
            {
                "module": self.module.state_dict(),
                "opt": self.opt.state_dict() if self.opt else None,
                "gen": self.gen.get_state(),
                "plan": self.plan,
                "t": self.t,
                "client_s": self.client_s,
                "norms": self.norms,
                "step_seed": self.step_seed,
                "rounds": self.rounds,
                "circuits": self.circuits,
            },
            buf,
        )
        return buf.getvalue()

    def restore(self, blob: bytes | None) -> None:
        if not blob:
            return
        st = safeload.load(blob, f"client {self.k}'s saved state")
        self.module.load_state_dict(st["module"])
        if st["opt"] is not None:
            self._optimizer(0.0).load_state_dict(st["opt"])
        self.gen.set_state(st["gen"])
        self.plan, self.t, self.client_s = st["plan"], st["t"], st["client_s"]
        self.norms, self.step_seed, self.rounds = st["norms"], st["step_seed"], st["rounds"]
        self.circuits = st.get("circuits", {})

    # ------------------------------------------------------------ the circuits it ran
    def _mark(self) -> dict[str, Counts]:
        return {n: totals(q.tally.snapshot()) for n, q in quantum_layers(self.module).items()}

    def _count(self, start: dict[str, Counts]) -> None:
        """Add what the quantum layers executed since ``start`` (a :meth:`_mark`)."""
        for n, c in self._mark().items():
            d = c - start.get(n, Counts())
            old = self.circuits.get(n, [0, 0, 0])
            self.circuits[n] = [old[0] + d.circuits, old[1] + d.shots, old[2] + d.exact_circuits]

    # ------------------------------------------------------------ a round
    def _optimizer(self, lr: float) -> torch.optim.Optimizer:
        if self.opt is None:
            self.opt = build_optimizer({**self.optim, "lr": lr}, self.module.parameters())
        return self.opt

    def begin(self, state: dict[str, torch.Tensor], lr: float, local_epochs: int) -> None:
        """Take the synchronised weights and plan the round's batches (``local_epochs`` passes)."""
        self.module.load_state_dict(state)
        for g in self._optimizer(lr).param_groups:
            g["lr"] = lr
        loader = DataLoader(_Positions(len(self.data)), batch_size=self.batch_size, shuffle=True, generator=self.gen)
        self.plan = [b.tolist() for _ in range(local_epochs) for b in loader]
        self.t, self.client_s, self.norms, self.circuits = 0, 0.0, [], {}
        self.rounds += 1
        self.module.train()

    @property
    def done(self) -> bool:
        return self.t >= len(self.plan)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return default_collate([self.data[i] for i in self.plan[self.t]])

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations at the cut and labels of the current batch (split protocols)."""
        t0, mark = time.perf_counter(), self._mark()
        x, y = self._batch()
        self.step_seed = (
            (self.k + 1) * 1_000_003 + self.rounds * 10_007 + self.t
        )  # not from gen: the shuffles stay as in-process
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.step_seed)
            a = self.module(x)
        self._count(mark)
        self.client_s += time.perf_counter() - t0
        return a, y

    def backward(self, grad: torch.Tensor) -> None:
        """The server's gradient at the cut: recompute the forward, backward, step; next batch."""
        t0 = time.perf_counter()
        x, _ = self._batch()
        opt = self._optimizer(0.0)
        opt.zero_grad(set_to_none=True)
        kept = {n: b.clone() for n, b in self.module.named_buffers()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.step_seed)
            a = self.module(x)
        with torch.no_grad():  # the first pass already moved the running statistics
            for n, b in self.module.named_buffers():
                b.copy_(kept[n])
        mark = self._mark()  # the recomputed forward is the simulation's, not a device's: not counted
        a.backward(grad)
        self._count(mark)
        self._record_norm()
        opt.step()
        self.t += 1
        self.client_s += time.perf_counter() - t0

    def train_whole(self) -> tuple[float, int]:
        """Every planned batch through the whole model (FL): ``(loss sum, samples)``."""
        loss_sum, n, mark = 0.0, 0, self._mark()
        opt = self._optimizer(0.0)
        while not self.done:
            t0 = time.perf_counter()
            x, y = self._batch()
            opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.module(x), y)
            loss.backward()
            self._record_norm()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            n += len(y)
            self.t += 1
            self.client_s += time.perf_counter() - t0
        self._count(mark)
        return loss_sum, n

    def _record_norm(self) -> None:
        """This step's client-side gradient L2 norm (0 without gradients), for the diagnostics."""
        self.norms.append(float(grad_norms([("client", self.module)]).get("client", torch.tensor(0.0))))

    def circuits_json(self) -> str:
        """This round's circuits, for the server's bill (:func:`add_circuits`)."""
        return json.dumps(self.circuits, sort_keys=True)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}


def add_circuits(module: nn.Module, circuits_json: str) -> None:
    """Count a remote client's circuits (:meth:`ClientWorker.circuits_json`) on the same-named
    quantum layers of the server's copy of its side, so the run's bill includes them."""
    counts = json.loads(circuits_json) if circuits_json else {}
    layers = quantum_layers(module)
    if unknown := sorted(set(counts) - set(layers)):
        raise RuntimeError(f"a client reported circuits of quantum layers the server does not have: {unknown}")
    for name, (circuits, shots, exact) in counts.items():
        q = layers[name]
        q.tally.add_counts(q.ansatz, Counts(int(circuits), int(shots), int(exact)))
