"""The server side of ``federation.engine=flower``: the wire to the SuperNodes and the
protocols whose clients are on the other end of it (see :mod:`hqexp.train.flower`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from hqexp.callbacks.gradnorm import grad_norms
from hqexp.errors import HqexpError
from hqexp.federated.parts import detached_state, fedavg
from hqexp.federated.protocols import SFLV1, SFLV2, Protocol, RoundStats, Setup
from hqexp.federated.remote import add_circuits
from hqexp.models import quantum_layers


class FlowerError(HqexpError, RuntimeError):
    """A client failed, or the SuperNodes did not answer in time."""


#: set when the process is interrupted while the ServerApp runs in Flower's thread: the next
#: wait for clients raises instead of waiting on clients that Flower has already stopped
STOP = threading.Event()


class Link:
    """The ServerApp's wire to the clients: which SuperNode is client ``k``, and exchanges
    of one message per client (sent together, replies awaited together)."""

    def __init__(self, grid, n_clients: int, run_conf: dict, timeout_s: float = 120.0) -> None:
        self.grid, self.run_conf, self.timeout_s, self.round = grid, run_conf, timeout_s, 0
        deadline = time.monotonic() + timeout_s
        while len(nodes := list(grid.get_node_ids())) < n_clients:
            if time.monotonic() > deadline:
                raise FlowerError(
                    f"{len(nodes)} of {n_clients} SuperNodes connected within {timeout_s:.0f} s "
                    "(federation.flower.timeout_s)"
                )
            time.sleep(0.05)
        self.node: dict[int, int] = {}
        for node, (_, conf) in self._send("query.hello", {n: ({}, {}) for n in nodes}).items():
            self.node[int(conf["partition"])] = node
        if sorted(self.node) != list(range(n_clients)) or len(self.node) != len(nodes):
            raise FlowerError(
                f"SuperNodes' partition-ids are {sorted(self.node)}; a {n_clients}-client run needs "
                f"exactly 0 … {n_clients - 1}, one each"
            )

    def _send(self, action: str, by_node: dict[int, tuple[dict, dict]]) -> dict[int, tuple[dict, dict]]:
        from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

        msgs = []
        for node, (arrays, conf) in by_node.items():
            content = RecordDict({"conf": ConfigRecord(dict(conf))})
            if arrays:
                content["arrays"] = ArrayRecord(dict(arrays))
            if action.endswith(("_begin", ".fl")):
                content["hqexp.run"] = ConfigRecord(dict(self.run_conf))
            msgs.append(Message(content, dst_node_id=node, message_type=action, group_id=str(self.round)))
        replies = self._await(msgs)
        out = {}
        for r in replies:
            who = r.metadata.src_node_id
            if r.has_error():
                raise FlowerError(f"client on SuperNode {who} failed on {action}: {r.error.reason.splitlines()[0]}")
            arrays = r.content.array_records.get("arrays")
            out[who] = (
                arrays.to_torch_state_dict() if arrays is not None else {},
                dict(r.content.config_records["conf"]),
            )
        if len(out) != len(by_node):
            raise FlowerError(
                f"{len(by_node) - len(out)} client(s) did not answer {action} within "
                f"{self.timeout_s:.0f} s (federation.flower.timeout_s)"
            )
        return out

    def _await(self, msgs: list) -> list:
        """Push ``msgs`` and pull their replies. Grid.send_and_receive polls a SuperLink every
        3 s, which a split round (a message per batch) pays on every step; this polls from
        5 ms, backing off to 0.25 s."""
        pending = set(self.grid.push_messages(msgs))
        deadline, wait, out = time.monotonic() + self.timeout_s, 0.005, []
        while pending and time.monotonic() < deadline:
            if STOP.is_set():
                raise FlowerError("stopped: this process was interrupted")
            got = list(self.grid.pull_messages(pending))
            out += got
            pending -= {m.metadata.reply_to_message_id for m in got}
            if pending:
                time.sleep(wait)
                wait = min(0.25, wait * 1.5)
        return out

    def exchange(self, action: str, by_client: dict[int, tuple[dict, dict]]) -> dict[int, tuple[dict, dict]]:
        """Send client ``k`` its ``(tensors, settings)``; return each client's reply the same way."""
        back = {node: k for k, node in self.node.items()}
        replies = self._send(action, {self.node[k]: v for k, v in by_client.items()})
        return {back[node]: v for node, v in replies.items()}


def _steps(st: RoundStats, conf: dict, client_norms: torch.Tensor, server: list, diag) -> None:
    """A client's finished round: its time, and each step's norms into the diagnostics."""
    st.client_s += float(conf["client_s"])
    if not hasattr(diag, "record"):  # no diagnostics asked for
        return
    for c, (s, q) in zip(client_norms.tolist(), server):
        norms = {"client": c, **({"server": s} if s is not None else {})}
        norms["total"] = math.sqrt(sum(v * v for v in norms.values()))
        diag.record(norms, q)


class FlowerFL(Protocol):
    """Federated averaging, the clients on Flower."""

    name = "fl"

    def __init__(self, s: Setup, link: Link) -> None:
        super().__init__(s)
        self.link = link

    def train_round(self, selected, loaders, local_epochs):
        st, ch = RoundStats(), self.s.channel
        self.link.round = ch.round
        g = detached_state(self.model)
        lr = self.s.optimizer.lr("client")
        out = self.link.exchange(
            "train.fl",
            {
                k: (
                    {**ch.send_state(g, client=k, direction="down", kind="model")},
                    {"lr": lr, "local_epochs": local_epochs},
                )
                for k in selected
            },
        )
        states = []
        for k in selected:
            arrays, conf = out[k]
            states.append(ch.send_state(_model(arrays), client=k, direction="up", kind="model"))
            add_circuits(self.model, conf.get("circuits", ""))
            st.loss_sum += float(conf["loss_sum"])
            st.samples += int(conf["samples"])
            st.steps += len(arrays["norms"])
            _steps(st, conf, arrays["norms"], [(None, {})] * len(arrays["norms"]), self.s.on_step)
        self.model.load_state_dict(fedavg(states, [self.s.sizes[k] for k in selected]))
        return st


def _model(arrays: dict) -> dict:
    """The client's weights out of a final reply."""
    return {k[len("state.") :]: v for k, v in arrays.items() if k.startswith("state.")}


class _FlowerSplit:
    """Server side of a split round on Flower (mixed into the in-process split protocols,
    whose server sides, FedAvg and checkpoints it keeps)."""

    link: Link
    s: Setup

    def _converse(
        self, ks: Sequence[int], server_of: Callable[[int], object], c_state: dict, st: RoundStats, local_epochs: int
    ) -> dict[int, dict]:
        """Clients ``ks`` through their rounds at the same time; their final weights."""
        ch = self.s.channel
        self.link.round = ch.round
        lr = self.s.optimizer.lr("client")
        pending = {
            k: ({**ch.send_state(c_state, client=k, direction="down")}, {"lr": lr, "local_epochs": local_epochs})
            for k in ks
        }
        action, done = "train.split_begin", {}
        steps: dict[int, list] = {k: [] for k in ks}
        while pending:
            replies = self.link.exchange(action, pending)
            pending, action = {}, "train.split_step"
            for k, (arrays, conf) in replies.items():
                if conf["done"]:
                    done[k] = ch.send_state(_model(arrays), client=k, direction="up")
                    add_circuits(self._client_global(), conf.get("circuits", ""))
                    _steps(st, conf, arrays["norms"], steps[k], self.s.on_step)
                    continue
                pending[k] = ({"grad": self._serve(k, server_of(k), arrays, st, steps[k])}, {})
        return done

    def _serve(self, k: int, server, arrays: dict, st: RoundStats, steps: list) -> torch.Tensor:
        ch = self.s.channel
        a = ch.send(arrays["a"], client=k, direction="up", kind="activations").requires_grad_()
        y = ch.send(arrays["y"], client=k, direction="up", kind="labels")
        opt = self._opt(server)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = self.s.loss_fn(server.module(a), y)
        loss.backward()
        steps.append(
            (
                float(grad_norms([("server", server.module)])["server"]),
                {
                    f"server.{n}": q.weights.grad.clone()
                    for n, q in quantum_layers(server.module).items()
                    if q.weights.grad is not None
                },
            )
        )
        opt.step()
        st.server_s += time.perf_counter() - t0
        st.loss_sum += float(loss.detach()) * len(y)
        st.samples += len(y)
        st.steps += 1
        return ch.send(a.grad, client=k, direction="down", kind="gradients")


class FlowerSFLV1(_FlowerSplit, SFLV1):
    """SplitFed V1 with the clients on Flower."""

    def __init__(self, s: Setup, link: Link) -> None:
        SFLV1.__init__(self, s)
        self.link = link

    def train_round(self, selected, loaders, local_epochs):
        st = RoundStats()
        c_state, s_state = detached_state(self._client_global()), detached_state(self.parts.server)
        for k in selected:
            self.servers[k].module.load_state_dict(s_state)
            self.servers[k].module.train()
        states = self._converse(selected, lambda k: self.servers[k], c_state, st, local_epochs)
        weights = [self.s.sizes[k] for k in selected]
        self._client_global().load_state_dict(fedavg([states[k] for k in selected], weights))
        self.parts.server.load_state_dict(fedavg([detached_state(self.servers[k].module) for k in selected], weights))
        return st


class FlowerSFLV2(_FlowerSplit, SFLV2):
    """SplitFed V2 with the clients on Flower: one server model, clients in turn."""

    def __init__(self, s: Setup, link: Link) -> None:
        SFLV2.__init__(self, s)
        self.link = link

    def train_round(self, selected, loaders, local_epochs):
        st, states = RoundStats(), {}
        c_state = detached_state(self._client_global())
        for k in self._order(selected):
            self.server.module.train()
            states.update(self._converse([k], lambda _: self.server, c_state, st, local_epochs))
        self._client_global().load_state_dict(
            fedavg([states[k] for k in selected], [self.s.sizes[k] for k in selected])
        )
        return st


PROTOCOLS: dict[str, type] = {"fl": FlowerFL, "sflv1": FlowerSFLV1, "sflv2": FlowerSFLV2}


def run_conf(cfg: DictConfig, model_name: str) -> dict:
    """What every client needs to build its side: the resolved config and the model's name."""
    return {"cfg": OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)), "model_name": model_name}
