"""The protocols, one object per mode, all driven by the same round loop (:mod:`.engine`).

::

  fl          client k: [whole model]            download W, train locally, upload W; FedAvg
  sl          client k: [blocks ≤ cut] ─a→ server: [rest, loss]   clients take turns; the
                                      ←∂a─                      client weights pass on
  sflv1       as sl, all clients at once; the server keeps one copy per client;
              both sides FedAvg-ed every round
  sflv2       as sl, clients' batches in turn through ONE server model; client sides FedAvg-ed
  sl_ushaped  client k: [blocks ≤ cut] ─a→ server: [middle] ─h→ client k: [head, loss]
                                      ←∂a─                  ←∂h─        (labels stay on the client)

Every tensor that crosses and every model transfer goes through the :class:`~.channel.Channel`.
Clients keep their own optimiser state between rounds (as a device would); FedAvg weights
are the clients' training-sample counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from hqexp.federated.channel import Channel
from hqexp.federated.parts import cut_model, detached_state, fedavg
from hqexp.models import clone

MODES = ("fl", "sl", "sflv1", "sflv2", "sl_ushaped")


@dataclass
class Setup:
    """What every protocol is built from."""

    model: nn.Module  # the global model: its modules are the global parts
    n_clients: int
    sizes: Sequence[int]  # training samples per client (the FedAvg weights)
    channel: Channel
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: Callable[[list, str], torch.optim.Optimizer]  # (params, "client" | "server")
    cut: int | str = 1
    model_name: str = "?"
    seed: int = 0
    #: called after each step's backward with ``{"client": module, "server": module}``
    on_step: Callable[[dict[str, nn.Module]], None] | None = None
    #: the client side's defences (NoPeek, activation noise, DP-SGD): hqexp.privacy.defences.ClientDefence
    defence: object | None = None
    batch_size: int = 32
    epochs: int = 1  # rounds × local epochs (DP accounting)


@dataclass
class RoundStats:
    loss_sum: float = 0.0
    samples: int = 0
    client_s: float = 0.0
    server_s: float = 0.0
    steps: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.samples if self.samples else math.nan


@dataclass
class _Side:
    """A module with its optimiser (created on first use); a client side under DP-SGD gets
    Opacus's per-sample-gradient hooks and a DP optimiser."""

    module: nn.Module
    role: str
    opt: torch.optim.Optimizer | None = field(default=None, repr=False)
    defence: object | None = field(default=None, repr=False)
    samples: int = 1  # this client's training samples (DP sample rate)
    _wrapped: object = field(default=None, repr=False)

    def optimizer(self, make, batch_size: int = 32, epochs: int = 1) -> torch.optim.Optimizer:
        if self.opt is None:
            opt = make(list(self.module.parameters()), self.role)
            if self.role == "client" and self.defence is not None and self.defence.dp_enabled:
                self._wrapped = self.defence.wrap(self.module)  # hooks on the module's own layers
                rate = min(1.0, batch_size / max(1, self.samples))
                opt = self.defence.optimizer(opt, batch_size, rate, int(epochs / rate), id(self))
            self.opt = opt
        return self.opt


class Protocol:
    """Base: the global model, per-client sides, the split training step."""

    name = "?"
    sequential = False  # clients one after another (their link times add up)
    labels_on_server = True
    ushaped = False

    def __init__(self, s: Setup) -> None:
        self.s = s
        self.model = s.model
        self.rng = torch.Generator().manual_seed(s.seed)

    # ------------------------------------------------------------ interface
    def train_round(self, selected: Sequence[int], loaders: dict, local_epochs: int) -> RoundStats:
        raise NotImplementedError

    def eval_model(self) -> nn.Module:
        """The model to evaluate after a round (the global one)."""
        return self.model

    def server_modules(self) -> list[nn.Module]:
        """Everything that runs on the server (where ``time/server_quantum_s`` is measured)."""
        return []

    def modules(self) -> list[nn.Module]:
        """The global model and every client's and server's own module (each counts its circuits)."""
        return [self.model, *(side.module for side in self._sides())]

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [side.opt for side in self._sides() if side.opt is not None]

    def _sides(self) -> list[_Side]:
        return []

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "sides": [
                (side.module.state_dict(), side.opt.state_dict() if side.opt else None) for side in self._sides()
            ],
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for side, (mod, opt) in zip(self._sides(), state["sides"]):
            side.module.load_state_dict(mod)
            if opt is not None:
                self._opt(side).load_state_dict(opt)
        self.rng.set_state(state["rng"])

    # ------------------------------------------------------------ pieces
    def _order(self, selected: Sequence[int]) -> list[int]:
        """Clients in a seeded random order (the turns of sequential protocols)."""
        perm = torch.randperm(len(selected), generator=self.rng).tolist()
        return [selected[i] for i in perm]

    def _opt(self, side: _Side) -> torch.optim.Optimizer:
        return side.optimizer(self.s.optimizer, self.s.batch_size, self.s.epochs)

    def _send_activations(self, k: int, x, a) -> tuple[torch.Tensor, torch.Tensor]:
        """``(what the client sends, the server's leaf)``: the activations, noised by the defence."""
        sent = self.s.defence.transmit(a) if self.s.defence is not None else a
        return sent, self.s.channel.send(sent, client=k, direction="up", kind="activations").requires_grad_()

    def _client_backward(self, x, a, sent, grad) -> None:
        """Backward of the client side from the gradient that came down (plus NoPeek's term)."""
        extra = self.s.defence.extra_loss(x, a) if self.s.defence is not None else None
        if extra is None or not extra.requires_grad:  # dCor of constant activations: nothing to push
            sent.backward(grad)
        else:
            torch.autograd.backward([sent, extra], [grad, torch.ones_like(extra)])

    def _split_step(self, k: int, client: _Side, server: _Side, x, y, st: RoundStats) -> None:
        """One batch of split learning: client forward, activations and labels up, server
        forward/backward/step, gradient down, client backward/step."""
        ch = self.s.channel
        c_opt, s_opt = self._opt(client), self._opt(server)
        t0 = time.perf_counter()
        c_opt.zero_grad(set_to_none=True)
        a = client.module(x)
        t1 = time.perf_counter()
        sent, a_srv = self._send_activations(k, x, a)
        y_srv = ch.send(y, client=k, direction="up", kind="labels")
        s_opt.zero_grad(set_to_none=True)
        loss = self.s.loss_fn(server.module(a_srv), y_srv)
        loss.backward()
        s_opt.step()
        t2 = time.perf_counter()
        self._client_backward(x, a, sent, ch.send(a_srv.grad, client=k, direction="down", kind="gradients"))
        c_opt.step()
        t3 = time.perf_counter()
        self._account(
            st, loss, len(y), (t1 - t0) + (t3 - t2), t2 - t1, {"client": client.module, "server": server.module}
        )

    def _account(self, st: RoundStats, loss, n: int, client_s: float, server_s: float, parts: dict) -> None:
        st.loss_sum += float(loss.detach()) * n
        st.samples += n
        st.client_s += client_s
        st.server_s += server_s
        st.steps += 1
        if self.s.on_step is not None:
            self.s.on_step(parts)

    def _epochs(self, loader, local_epochs: int):
        for _ in range(local_epochs):
            yield from loader


class FL(Protocol):
    """Federated averaging of the whole model (McMahan et al. 2017)."""

    name = "fl"

    def __init__(self, s: Setup) -> None:
        super().__init__(s)
        self.local = [_Side(clone(self.model), "client") for _ in range(s.n_clients)]

    def _sides(self):
        return self.local

    def train_round(self, selected, loaders, local_epochs):
        st, ch, states = RoundStats(), self.s.channel, []
        global_state = detached_state(self.model)
        for k in selected:
            side = self.local[k]
            side.module.load_state_dict(ch.send_state(global_state, client=k, direction="down", kind="model"))
            opt = self._opt(side)
            side.module.train()
            for x, y in self._epochs(loaders[k], local_epochs):
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss = self.s.loss_fn(side.module(x), y)
                loss.backward()
                opt.step()
                self._account(st, loss, len(y), time.perf_counter() - t0, 0.0, {"client": side.module})
            states.append(ch.send_state(detached_state(side.module), client=k, direction="up", kind="model"))
        self.model.load_state_dict(fedavg(states, [self.s.sizes[k] for k in selected]))
        return st


class _Split(Protocol):
    """What the split protocols share: the global client and server parts."""

    def __init__(self, s: Setup) -> None:
        super().__init__(s)
        self.parts = cut_model(self.model, s.cut, ushaped=self.ushaped, model_name=s.model_name)
        client_global = nn.ModuleList([self.parts.client, self.parts.head]) if self.ushaped else self.parts.client
        self.clients = [
            _Side(clone(client_global), "client", defence=s.defence, samples=s.sizes[k]) for k in range(s.n_clients)
        ]

    def _client_global(self) -> nn.Module:
        return nn.ModuleList([self.parts.client, self.parts.head]) if self.ushaped else self.parts.client

    def server_modules(self):
        return [self.parts.server]

    def _train_modes(self, *sides: _Side) -> None:
        for side in sides:
            side.module.train()


class _OneServer(_Split):
    """Split protocols whose clients all go through one server model."""

    def __init__(self, s: Setup) -> None:
        super().__init__(s)
        self.server = _Side(self.parts.server, "server")

    def _sides(self):
        return [*self.clients, self.server]


class SL(_OneServer):
    """Vanilla split learning: clients take turns; the client weights pass from one to the next."""

    name = "sl"
    sequential = True

    def train_round(self, selected, loaders, local_epochs):
        st, ch = RoundStats(), self.s.channel
        handed = detached_state(self._client_global())
        for k in self._order(selected):
            side = self.clients[k]
            side.module.load_state_dict(ch.send_state(handed, client=k, direction="down"))
            self._train_modes(side, self.server)
            self._turn(k, side, loaders[k], local_epochs, st)
            handed = detached_state(side.module)
        self._client_global().load_state_dict(handed)
        return st

    def _turn(self, k, side, loader, local_epochs, st):
        for x, y in self._epochs(loader, local_epochs):
            self._split_step(k, side, self.server, x, y, st)


class SFLV1(_Split):
    """SplitFed V1 (Thapa et al. 2022): clients in parallel, one server copy per client;
    client sides and server copies FedAvg-ed every round."""

    name = "sflv1"

    def __init__(self, s: Setup) -> None:
        super().__init__(s)
        self.servers = [_Side(clone(self.parts.server), "server") for _ in range(s.n_clients)]

    def _sides(self):
        return [*self.clients, *self.servers]

    def server_modules(self):
        return [side.module for side in self.servers]

    def train_round(self, selected, loaders, local_epochs):
        st, ch = RoundStats(), self.s.channel
        c_state, s_state = detached_state(self._client_global()), detached_state(self.parts.server)
        c_states, s_states = [], []
        for k in selected:  # independent: the order does not change the result
            client, server = self.clients[k], self.servers[k]
            client.module.load_state_dict(ch.send_state(c_state, client=k, direction="down"))
            server.module.load_state_dict(s_state)  # on the server itself: no traffic
            self._train_modes(client, server)
            for x, y in self._epochs(loaders[k], local_epochs):
                self._split_step(k, client, server, x, y, st)
            c_states.append(ch.send_state(detached_state(client.module), client=k, direction="up"))
            s_states.append(detached_state(server.module))
        weights = [self.s.sizes[k] for k in selected]
        self._client_global().load_state_dict(fedavg(c_states, weights))
        self.parts.server.load_state_dict(fedavg(s_states, weights))
        return st


class SFLV2(_OneServer):
    """SplitFed V2: one server model updated by the clients' batches in turn; client sides
    FedAvg-ed every round."""

    name = "sflv2"

    def train_round(self, selected, loaders, local_epochs):
        st, ch = RoundStats(), self.s.channel
        c_state, c_states = detached_state(self._client_global()), {}
        for k in self._order(selected):
            client = self.clients[k]
            client.module.load_state_dict(ch.send_state(c_state, client=k, direction="down"))
            self._train_modes(client, self.server)
            for x, y in self._epochs(loaders[k], local_epochs):
                self._split_step(k, client, self.server, x, y, st)
            c_states[k] = ch.send_state(detached_state(client.module), client=k, direction="up")
        self._client_global().load_state_dict(
            fedavg([c_states[k] for k in selected], [self.s.sizes[k] for k in selected])
        )
        return st


class USL(SL):
    """U-shaped split learning: the client keeps the first blocks *and* the head with the
    loss, so labels never leave it; clients take turns as in ``sl``."""

    name = "sl_ushaped"
    labels_on_server = False
    ushaped = True

    def _turn(self, k, side, loader, local_epochs, st):
        ch = self.s.channel
        front, head = side.module[0], side.module[1]
        c_opt, s_opt = self._opt(side), self._opt(self.server)
        for x, y in self._epochs(loader, local_epochs):
            t0 = time.perf_counter()
            c_opt.zero_grad(set_to_none=True)
            a = front(x)
            t1 = time.perf_counter()
            sent, a_srv = self._send_activations(k, x, a)
            s_opt.zero_grad(set_to_none=True)
            h = self.server.module(a_srv)
            t2 = time.perf_counter()
            h_cli = ch.send(h, client=k, direction="down", kind="server_activations").requires_grad_()
            loss = self.s.loss_fn(head(h_cli), y)
            loss.backward()
            t3 = time.perf_counter()
            h.backward(ch.send(h_cli.grad, client=k, direction="up", kind="server_gradients"))
            s_opt.step()
            t4 = time.perf_counter()
            self._client_backward(x, a, sent, ch.send(a_srv.grad, client=k, direction="down", kind="gradients"))
            c_opt.step()
            t5 = time.perf_counter()
            self._account(
                st,
                loss,
                len(y),
                (t1 - t0) + (t3 - t2) + (t5 - t4),
                (t2 - t1) + (t4 - t3),
                {"client": side.module, "server": self.server.module},
            )


PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (FL, SL, SFLV1, SFLV2, USL)}
