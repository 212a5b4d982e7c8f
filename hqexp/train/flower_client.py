"""The client side of ``federation.engine=flower``: the ``ClientApp`` every SuperNode runs.

Each message is handled by this client's :class:`~hqexp.federated.remote.ClientWorker`,
rebuilt from the run's config (sent with the first message of each round) and from its own
state in ``context.state`` — on the Deployment Engine every message is a fresh process.
The client reads its own data: the same seeded partition as the server computes, from
``dataset.root`` or the node's ``data-root``, keeping part ``partition-id``.
"""

from __future__ import annotations

import hashlib

import torch
from omegaconf import OmegaConf
from torch.utils.data import Subset

from hqexp.errors import ConfigError
from hqexp.federated.parts import cut_model
from hqexp.federated.remote import ClientWorker

_BUILT: dict[tuple[str, int], tuple] = {}


def _client_side(cfg_yaml: str, model_name: str, k: int, data_root: str | None):
    """Client ``k``'s module, training samples, loss and config (built once per process)."""
    key = (hashlib.sha1(f"{cfg_yaml}|{data_root}".encode()).hexdigest(), k)
    if key not in _BUILT:
        import lightning as L

        from hqexp.federated.config import FedConfig
        from hqexp.train.build import build_datamodule, build_model, federated_loss

        cfg = OmegaConf.create(cfg_yaml)
        if data_root:  # this machine's copy of the dataset
            cfg.dataset.root = data_root
        fed = FedConfig.from_cfg(cfg)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        dm = build_datamodule(cfg)
        info = dm.info
        parts = fed.clients(dm, cfg.seed)
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
    module, data, loss_fn, cfg = _client_side(run["cfg"], run["model_name"], k, context.node_config.get("data-root"))
    w = ClientWorker(
        module,
        data,
        k,
        int(cfg.dataset.batch_size),
        int(cfg.seed),
        OmegaConf.to_container(cfg.optim, resolve=True),
        loss_fn,
    )
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
    conf = {"done": True, "client_s": w.client_s, "circuits": w.circuits_json(), **conf}
    return _reply(msg, context, w, arrays, conf)


def _next_batch(msg, context, w: ClientWorker):
    if w.done:
        return _final(msg, context, w, {})
    a, y = w.forward()
    return _reply(msg, context, w, {"a": a, "y": y}, {"done": False})


def _hello(msg, context):
    from flwr.app import ConfigRecord, Message, RecordDict

    return Message(
        RecordDict({"conf": ConfigRecord({"partition": int(context.node_config["partition-id"])})}), reply_to=msg
    )


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
