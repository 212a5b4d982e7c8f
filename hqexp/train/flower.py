"""``federation.engine=flower``: the protocols as a Flower ``ServerApp`` and ``ClientApp``.

The server keeps what the in-process engine's server keeps (the global model, the server
sides, the channel and its ledger, evaluation and the MLflow record); each client — a
Flower SuperNode, told its client number by ``node_config["partition-id"]`` — reads its
own part of the data and runs its side (:class:`~hqexp.federated.remote.ClientWorker`).
What crosses travels as Flower messages and is counted by the same channel, so the ledger
of a Flower run equals the in-process one byte for byte:

  fl       ``train.fl``           global weights ↓, the client's weights, losses and norms ↑
  sflv1/2  ``train.split_begin``  client weights ↓, the first batch's activations + labels ↑
           ``train.split_step``   the gradient at the cut ↓, the next batch's activations ↑
                                  (after its last batch: the client's weights ↑)

SFLV1 clients talk to the server at the same time (one message each per step); SFLV2
clients take turns through the one server model. Two runtimes: Flower's simulation engine
(``federation.flower.superlink: null``: virtual SuperNodes as Ray actors, on this machine)
and its Deployment Engine (a SuperLink and SuperNodes started by ``flower-superlink`` /
``flower-supernode``, anywhere; see :mod:`hqexp.train.flower_app`).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Subset

from hqexp.callbacks.gradnorm import grad_norms
from hqexp.errors import ConfigError, HqexpError
from hqexp.federated.parts import cut_model, detached_state, fedavg
from hqexp.federated.protocols import SFLV1, SFLV2, Protocol, RoundStats, Setup
from hqexp.federated.remote import ClientWorker
from hqexp.models import quantum_layers

MODES = ("fl", "sflv1", "sflv2")


class FlowerError(HqexpError, RuntimeError):
    """A client failed, or the SuperNodes did not answer in time."""


#: set when the process is interrupted while the ServerApp runs in Flower's thread: the next
#: wait for clients raises instead of waiting on clients that Flower has already stopped
_STOP = threading.Event()


def check(fed, priv: dict, cfg: DictConfig) -> None:
    """One line for what the Flower engine does not run."""
    if fed.mode not in MODES:
        raise ConfigError(f"federation.engine=flower runs federation={'|'.join(MODES)}; {fed.mode} runs with "
                          "federation.engine=inprocess")
    if priv.get("nopeek_weight") or priv.get("noise_std") or (priv.get("dp") or {}).get("enabled"):
        raise ConfigError("client-side defences (privacy.nopeek_weight, noise_std, dp) run with "
                          "federation.engine=inprocess only")
    if cfg.get("ckpt_path") is not None:
        raise ConfigError("resuming (ckpt_path) runs with federation.engine=inprocess only: a Flower client's "
                          "optimiser state lives on its SuperNode")
    try:
        import flwr  # noqa: F401
    except ImportError as e:
        raise ConfigError("federation.engine=flower needs Flower: pip install 'hqexp[fed]'") from e


# ====================================================================== client side
_BUILT: dict[tuple[str, int], tuple] = {}


def _client_side(cfg_yaml: str, model_name: str, k: int, data_root: str | None):
    """Client ``k``'s module, training samples, loss and config (built once per process)."""
    key = (hashlib.sha1(f"{cfg_yaml}|{data_root}".encode()).hexdigest(), k)
    if key not in _BUILT:
        import lightning as L

        from hqexp.federated import partition
        from hqexp.federated.config import FedConfig
        from hqexp.train.build import build_datamodule, build_model, federated_loss

        cfg = OmegaConf.create(cfg_yaml)
        if data_root:  # this machine's copy of the dataset
            cfg.dataset.root = data_root
        fed = FedConfig.from_cfg(cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        dm = build_datamodule(cfg)
        info = dm.info
        parts = partition(fed.partition, fed.n_clients, {s: dm.targets(s) for s in ("train", "val", "test")},
                          info.groups, fed.alpha, cfg.seed, info.group_kind or "group")
        if not 0 <= k < parts.n_clients:
            raise ConfigError(f"this SuperNode's partition-id {k} is not a client of a {parts.n_clients}-client run")
        model = build_model(cfg, info)
        module = model if fed.mode == "fl" else cut_model(model, fed.cut, False, model_name).client
        data = Subset(dm.dataset("train"), parts.clients["train"][k].tolist())
        _BUILT[key] = (module, data, federated_loss(info.task, dm), cfg)
    return _BUILT[key]


def _worker(msg, context) -> ClientWorker:
    """This client's worker, with its state from earlier messages of the run."""
    from flwr.app import ConfigRecord

    saved = context.state.config_records
    if "hqexp.run" in msg.content.config_records:  # the first message of a round carries the run's config
        saved["hqexp.run"] = ConfigRecord(dict(msg.content.config_records["hqexp.run"]))
    run = saved["hqexp.run"]
    k = int(context.node_config["partition-id"])
    module, data, loss_fn, cfg = _client_side(run["cfg"], run["model_name"], k,
                                              context.node_config.get("data-root"))
    w = ClientWorker(module, data, k, int(cfg.dataset.batch_size), int(cfg.seed), float(cfg.optim.weight_decay),
                     loss_fn)
    w.restore(saved["hqexp.worker"]["blob"] if "hqexp.worker" in saved else None)
    return w


def _reply(msg, context, w: ClientWorker, arrays: dict, conf: dict):
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    context.state.config_records["hqexp.worker"] = ConfigRecord({"blob": w.export()})
    return Message(RecordDict({"arrays": ArrayRecord(dict(arrays)), "conf": ConfigRecord(conf)}), reply_to=msg)


def _final(msg, context, w: ClientWorker, conf: dict):
    """The round's end: the client's weights (``state.<name>``), per-step gradient norms, time."""
    arrays = {f"state.{k}": v for k, v in w.state().items()}
    arrays["norms"] = torch.tensor(w.norms, dtype=torch.float64)
    return _reply(msg, context, w, arrays, {"done": True, "client_s": w.client_s, **conf})


def _next_batch(msg, context, w: ClientWorker):
    if w.done:
        return _final(msg, context, w, {})
    a, y = w.forward()
    return _reply(msg, context, w, {"a": a, "y": y}, {"done": False})


def _hello(msg, context):
    from flwr.app import ConfigRecord, Message, RecordDict

    return Message(RecordDict({"conf": ConfigRecord({"partition": int(context.node_config["partition-id"])})}),
                   reply_to=msg)


def _begin(msg, context) -> ClientWorker:
    w = _worker(msg, context)
    conf = msg.content.config_records["conf"]
    w.begin(msg.content.array_records["arrays"].to_torch_state_dict(), float(conf["lr"]), int(conf["local_epochs"]))
    return w


def _train_fl(msg, context):
    w = _begin(msg, context)
    loss_sum, n = w.train_whole()
    return _final(msg, context, w, {"loss_sum": loss_sum, "samples": n})


def _split_begin(msg, context):
    return _next_batch(msg, context, _begin(msg, context))


def _split_step(msg, context):
    w = _worker(msg, context)
    w.backward(msg.content.array_records["arrays"].to_torch_state_dict()["grad"])
    return _next_batch(msg, context, w)


def make_client_app():
    """The ``ClientApp`` every SuperNode runs."""
    from flwr.clientapp import ClientApp

    app = ClientApp()
    app.query("hello")(_hello)
    app.train("fl")(_train_fl)
    app.train("split_begin")(_split_begin)
    app.train("split_step")(_split_step)
    return app


# ====================================================================== server side
class Link:
    """The ServerApp's wire to the clients: which SuperNode is client ``k``, and exchanges
    of one message per client (sent together, replies awaited together)."""

    def __init__(self, grid, n_clients: int, run_conf: dict, timeout_s: float = 120.0) -> None:
        self.grid, self.run_conf, self.timeout_s, self.round = grid, run_conf, timeout_s, 0
        deadline = time.monotonic() + timeout_s
        while len(nodes := list(grid.get_node_ids())) < n_clients:
            if time.monotonic() > deadline:
                raise FlowerError(f"{len(nodes)} of {n_clients} SuperNodes connected within {timeout_s:.0f} s "
                                  "(federation.flower.timeout_s)")
            time.sleep(0.05)
        self.node: dict[int, int] = {}
        for node, (_, conf) in self._send("query.hello", {n: ({}, {}) for n in nodes}).items():
            self.node[int(conf["partition"])] = node
        if sorted(self.node) != list(range(n_clients)) or len(self.node) != len(nodes):
            raise FlowerError(f"SuperNodes' partition-ids are {sorted(self.node)}; a {n_clients}-client run needs "
                              f"exactly 0 … {n_clients - 1}, one each")

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
            out[who] = (arrays.to_torch_state_dict() if arrays is not None else {},
                        dict(r.content.config_records["conf"]))
        if len(out) != len(by_node):
            raise FlowerError(f"{len(by_node) - len(out)} client(s) did not answer {action} within "
                              f"{self.timeout_s:.0f} s (federation.flower.timeout_s)")
        return out

    def _await(self, msgs: list) -> list:
        """Push ``msgs`` and pull their replies. Grid.send_and_receive polls a SuperLink every
        3 s, which a split round (a message per batch) pays on every step; this polls from
        5 ms, backing off to 0.25 s."""
        pending = set(self.grid.push_messages(msgs))
        deadline, wait, out = time.monotonic() + self.timeout_s, 0.005, []
        while pending and time.monotonic() < deadline:
            if _STOP.is_set():
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
        out = self.link.exchange("train.fl", {k: ({**ch.send_state(g, client=k, direction="down", kind="model")},
                                                  {"lr": lr, "local_epochs": local_epochs}) for k in selected})
        states = []
        for k in selected:
            arrays, conf = out[k]
            states.append(ch.send_state(_model(arrays), client=k, direction="up", kind="model"))
            st.loss_sum += float(conf["loss_sum"])
            st.samples += int(conf["samples"])
            st.steps += len(arrays["norms"])
            _steps(st, conf, arrays["norms"], [(None, {})] * len(arrays["norms"]), self.s.on_step)
        self.model.load_state_dict(fedavg(states, [self.s.sizes[k] for k in selected]))
        return st


def _model(arrays: dict) -> dict:
    """The client's weights out of a final reply."""
    return {k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")}


class _FlowerSplit:
    """Server side of a split round on Flower (mixed into the in-process split protocols,
    whose server sides, FedAvg and checkpoints it keeps)."""

    link: Link
    s: Setup

    def _converse(self, ks: Sequence[int], server_of: Callable[[int], object], c_state: dict, st: RoundStats,
                  local_epochs: int) -> dict[int, dict]:
        """Clients ``ks`` through their rounds at the same time; their final weights."""
        ch = self.s.channel
        self.link.round = ch.round
        lr = self.s.optimizer.lr("client")
        pending = {k: ({**ch.send_state(c_state, client=k, direction="down")},
                       {"lr": lr, "local_epochs": local_epochs}) for k in ks}
        action, done = "train.split_begin", {}
        steps: dict[int, list] = {k: [] for k in ks}
        while pending:
            replies = self.link.exchange(action, pending)
            pending, action = {}, "train.split_step"
            for k, (arrays, conf) in replies.items():
                if conf["done"]:
                    done[k] = ch.send_state(_model(arrays), client=k, direction="up")
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
        steps.append((float(grad_norms([("server", server.module)])["server"]),
                      {f"server.{n}": q.weights.grad.clone() for n, q in quantum_layers(server.module).items()
                       if q.weights.grad is not None}))
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
        self.parts.server.load_state_dict(fedavg([detached_state(self.servers[k].module) for k in selected],
                                                 weights))
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
        self._client_global().load_state_dict(fedavg([states[k] for k in selected],
                                                     [self.s.sizes[k] for k in selected]))
        return st


PROTOCOLS: dict[str, type] = {"fl": FlowerFL, "sflv1": FlowerSFLV1, "sflv2": FlowerSFLV2}


def run_conf(cfg: DictConfig, model_name: str) -> dict:
    """What every client needs to build its side: the resolved config and the model's name."""
    return {"cfg": OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)), "model_name": model_name}


def simulate(cfg: DictConfig, n_clients: int, body: Callable[[object], dict], cpus_per_client: float) -> dict:
    """Run ``body(grid)`` as the ServerApp of a Flower simulation with ``n_clients`` virtual
    SuperNodes (Ray actors on this machine); its result, or its exception re-raised here."""
    import logging

    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.ERROR)  # a line per message otherwise
    out: dict = {}
    server = ServerApp()

    finished = threading.Event()

    @server.main()
    def _main(grid, context) -> None:
        try:
            out["value"] = body(grid)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
            out["error"] = e
        finally:
            finished.set()

    _STOP.clear()
    try:
        run_simulation(server, make_client_app(), num_supernodes=n_clients,
                       backend_config={"client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
                                       "init_args": {"address": "local", "log_to_driver": False,
                                                     "include_dashboard": False}})
    except BaseException:
        # Ctrl-C / SIGTERM reach this (the main) thread; the server runs in Flower's, which
        # would otherwise keep the process alive waiting for clients Ray has stopped
        _STOP.set()
        finished.wait(timeout=60)
        raise
    if "error" in out:
        raise out["error"]
    if "value" not in out:
        raise FlowerError("the Flower simulation ended without running the server")
    return out["value"]


_GRID: list = []  # the SuperLink's grid, inside the ServerApp process of a deployed run


def attach_grid(grid) -> None:
    """Called by the deployed ServerApp (:mod:`hqexp.flower_app`): train on this grid."""
    _GRID[:] = [grid]


def run(cfg: DictConfig, fed, setup: Setup, execute: Callable[[Protocol], dict]) -> dict:
    """The run on Flower: ``execute(protocol)`` as the ServerApp, the clients as SuperNodes —
    virtual ones here (simulation), or a SuperLink's (the job is submitted to it)."""
    opts = fed.flower

    def body(grid) -> dict:
        link = Link(grid, setup.n_clients, run_conf(cfg, setup.model_name), float(opts["timeout_s"]))
        return execute(PROTOCOLS[fed.mode](setup, link))

    if _GRID:  # this process is the deployed ServerApp
        import logging

        for name in ("httpx", "flwr"):  # a line per HTTP poll otherwise, streamed to the submitter
            logging.getLogger(name).setLevel(logging.WARNING)
        return body(_GRID[0])
    if opts["superlink"] is not None:
        return submit(cfg, str(opts["superlink"]))
    return simulate(cfg, setup.n_clients, body, float(opts["cpus_per_client"]))


APP_TOML = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "hqexp-flower"
version = "1.0.0"
description = "hqexp split / split-federated training on Flower"
license = "MIT"
dependencies = []

[tool.flwr.app]
publisher = "hqexp"

[tool.flwr.app.components]
serverapp = "hqexp.flower_app:server_app"
clientapp = "hqexp.flower_app:client_app"

[tool.flwr.app.config]
overrides = ""
"""


def submit(cfg: DictConfig, superlink: str) -> dict:
    """Submit this job to the SuperLink at ``superlink`` (its Control API) with ``flwr run``, and
    stream its log here until it ends. The ServerApp process records the MLflow run."""
    import base64
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from hqexp.config import output_dir

    beside = Path(sys.executable).parent / "flwr"  # this environment's, activated or not
    flwr = str(beside) if beside.exists() else shutil.which("flwr")
    if flwr is None:
        raise ConfigError("federation.flower.superlink needs the `flwr` command: pip install 'hqexp[fed]'")
    here = output_dir()
    app, home = here / "flower_app", here / "flower_home"
    app.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (app / "pyproject.toml").write_text(APP_TOML)
    (home / "config.toml").write_text(f'[superlink]\ndefault = "hqexp"\n\n[superlink.hqexp]\n'
                                      f'address = "{superlink}"\ninsecure = true\n')
    overrides = [*HydraConfig.get().overrides.task, f"hydra.run.dir={here / 'server'}",
                 f"mlflow.tracking_uri={cfg.mlflow.tracking_uri}"]
    packed = base64.b64encode(json.dumps(overrides).encode()).decode()
    env = {**os.environ, "FLWR_HOME": str(home)}
    proc = subprocess.Popen([flwr, "run", str(app), "hqexp", "--run-config", f'overrides="{packed}"', "--stream"],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_id, finished, last = None, False, "no output"
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            run_id = run_id or _run_id(line)
            finished = finished or line.startswith("hqexp train (")
            last = line.strip() or last
        proc.wait()
    except BaseException:
        proc.kill()
        if run_id is not None:  # the job goes on on the SuperLink unless stopped
            subprocess.run([flwr, "stop", run_id, "hqexp"], env=env, capture_output=True, timeout=60)
            print(f"hqexp: stopped Flower run {run_id} on {superlink}", file=sys.stderr)
        raise
    if proc.returncode != 0 or not finished:
        raise FlowerError(f"the run on SuperLink {superlink} did not finish: {last}")
    return {}


def _run_id(line: str) -> str | None:
    """Flower's run id out of a line of ``flwr run`` (``… run_id `123` …`` / ``… run 123 …``)."""
    import re

    m = re.search(r"run(?:_id| ID)?[ :`]+(\d{6,})", line)
    return m.group(1) if m else None
