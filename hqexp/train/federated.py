"""``hqexp train federation=fl|sl|sflv1|sflv2|sl_ushaped``: build the data, model, clients and
protocol, run the rounds (:mod:`hqexp.federated`), and record the run in MLflow — per
round (step = round) and at the end, with the same tags, checkpoints and artifacts as an
ordinary run plus the communication ledger."""

from __future__ import annotations

import dataclasses
import time

import torch
from omegaconf import DictConfig, OmegaConf

from hqexp import safeload
from hqexp.config import choice, output_dir
from hqexp.errors import ConfigError
from hqexp.federated.channel import Transfer
from hqexp.federated.config import FedConfig
from hqexp.tracking import record
from hqexp.train.build import build_datamodule, build_model, federated_loss, qpu_profile
from hqexp.train.facts import backend_report, model_facts
from hqexp.train.robustness import adversarial_scores

MB = 1e6


def train_federated(cfg: DictConfig) -> dict:
    """Train one split / split-federated run (see the module docstring); returns the test metrics."""
    import lightning as L

    from hqexp.callbacks.barren import GradientWindow
    from hqexp.federated import Channel, Engine, Ledger, Optimizers, Setup, StepDiagnostics
    from hqexp.federated.protocols import PROTOCOLS
    from hqexp.privacy import check as check_privacy
    from hqexp.privacy.defences import ClientDefence

    fed = FedConfig.from_cfg(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    info = dm.info
    loss_fn = federated_loss(info.task, dm)
    priv = OmegaConf.to_container(cfg.privacy, resolve=True)
    check_privacy(
        priv, OmegaConf.to_container(cfg.attack, resolve=True), fed.mode, info.task, info.n_classes, choice("dataset")
    )
    if fed.engine == "flower":
        from hqexp.train import flower

        flower.check(fed, priv, cfg)
    defence = ClientDefence(priv["nopeek_weight"], priv["noise_std"], priv["dp"], cfg.seed)
    parts = fed.clients(dm, cfg.seed)
    model = build_model(cfg, info)
    ledger = Ledger()
    channel = Channel(ledger, fed.link_mbps, fed.latency_ms)
    opts = Optimizers(
        OmegaConf.to_container(cfg.optim, resolve=True),
        cfg.optim.lr,
        fed.server_lr or cfg.optim.lr,
        OmegaConf.to_container(cfg.scheduler, resolve=True),
        fed.rounds,
    )
    bp = cfg.callbacks.get("barren_plateau")
    diag = StepDiagnostics(GradientWindow(bp.window if bp else 20, bp.threshold if bp else 1e-6))
    setup = Setup(
        model,
        parts.n_clients,
        parts.sizes("train"),
        channel,
        loss_fn,
        opts,
        fed.cut,
        choice("model"),
        cfg.seed,
        diag,
        defence if defence.active else None,
        dm.batch_size,
        fed.rounds * fed.local_epochs,
    )

    def execute(protocol) -> dict:
        engine = Engine(
            protocol,
            parts,
            {s: dm.dataset(s) for s in ("train", "val", "test")},
            info.task,
            info.n_classes,
            loss_fn,
            dm.batch_size,
            fed.rounds,
            fed.local_epochs,
            fed.fraction,
            cfg.seed,
            opts,
            diag,
        )
        rec = record.start_run(cfg, "train", fed.tags(model, parts))
        run = FederatedRun(cfg, fed, rec, engine, ledger, model, protocol, dm)
        run.defence = defence if defence.active else None
        run.privacy = _probe(priv, fed, protocol, dm, loss_fn, cfg.seed, run.defence)
        return run.execute()

    if fed.engine == "flower":
        return flower.run(cfg, fed, setup, execute)
    return execute(PROTOCOLS[fed.mode](setup))


def _probe(priv: dict, fed, protocol, dm, loss_fn, seed: int, defence):
    """The privacy measures of a split run (none for fl: nothing crosses a cut)."""
    from hqexp.privacy import wants_leak
    from hqexp.privacy.measures import PrivacyProbe

    if not priv.get("measure", True) or fed.mode == "fl":
        return None
    parts = protocol.parts
    return PrivacyProbe(
        parts.client,
        {s: dm.dataset(s) for s in ("val", "test")},
        int(priv["n_eval"]),
        parts.server,
        parts.head,
        loss_fn,
        wants_leak(priv, fed.mode, dm.info.task, dm.info.n_classes),
        int(priv["inversion_epochs"]),
        int(priv["whitebox_steps"]),
        seed,
        defence,
    )


class FederatedRun:
    """Recording one federated run: per-round metrics, checkpoints, ledger, plots, test."""

    def __init__(self, cfg, fed, rec, engine, ledger, model, protocol, dm) -> None:
        self.cfg, self.fed, self.rec, self.engine, self.ledger = cfg, fed, rec, engine, ledger
        self.model, self.protocol, self.dm = model, protocol, dm
        self.ckpt_dir = output_dir() / "checkpoints"
        self.best: tuple[float, int, dict] | None = None
        self.privacy = None  # a hqexp.privacy.measures.PrivacyProbe, for split protocols
        self.defence = None
        self.reached: dict | None = None
        self.link_s = 0.0
        self.meta = {
            "config": OmegaConf.to_container(cfg, resolve=True),
            "run_id": rec.run_id,
            "choices": {g: choice(g) for g in (*record.CHOICE_GROUPS, "federation")},
        }

    def execute(self) -> dict:
        from hqexp.federated.parts import cut_model, n_params

        facts, used = model_facts(self.model)
        self.rec.set_tags({"backend_used": used, "energy_source": "unavailable:not-measured-in-federated-runs"})
        record.log_config(self.rec, self.cfg)
        sizes = {"params/client": 0, "params/server": 0}
        if self.fed.mode == "fl":
            sizes["params/client"] = facts["params/total"]
        else:
            p = cut_model(self.model, self.fed.cut, self.protocol.ushaped, choice("model"))
            sizes = {
                "params/client": n_params(p.client) + (n_params(p.head) if p.head is not None else 0),
                "params/server": n_params(p.server),
            }
        self.rec.log_metrics(
            {
                **facts,
                **sizes,
                "federation/n_clients": self.engine.partition.n_clients,
                **{f"federation/client_samples/{k}": n for k, n in enumerate(self.engine.partition.sizes("train"))},
            }
        )
        from hqexp.models import quantum_layers
        from hqexp.quantum.bill import BillMeter

        layers = {id(q): q for m in self.protocol.modules() for q in quantum_layers(m).values()}
        self.bill = BillMeter(layers.values(), qpu_profile(self.cfg))
        self._round_mark = self.bill.snapshot()
        start = self._resume()
        t0 = time.perf_counter()
        self.engine.fit(start, self._on_round)
        elapsed = time.perf_counter() - t0
        metrics = self._test(elapsed)
        if self.bill.layers:
            bill = self.bill.metrics()
            self.rec.log_metrics(bill, step=len(self.engine.history))
            self.rec.set_tags(self.bill.tags())
            metrics.update(bill)
        metrics.update({**facts, **sizes})
        backend_report(self.rec, self.model)
        self.rec.terminate("FINISHED")
        record.headline(metrics, self.rec, f"train ({self.fed.mode}, {self.engine.partition.n_clients} clients)")
        return metrics

    # ------------------------------------------------------------ per round
    def _on_round(self, rnd: int, metrics: dict) -> None:
        tot, this = self.ledger.totals(), self.ledger.totals(rnd)
        self.link_s += self.ledger.link_seconds(rnd, self.protocol.sequential)
        comm = {f"comm/{k}_bytes": v for k, v in tot.items()}
        comm.update({f"comm/round/{k}_bytes": v for k, v in this.items()})
        comm.update(
            {
                "time/comm_simulated_s": self.link_s,
                "time/round_comm_simulated_s": self.ledger.link_seconds(rnd, self.protocol.sequential),
            }
        )
        if self.bill.layers:  # the round's circuits (training and validation), as a device would run them
            done = self.bill.since(self._round_mark)
            self._round_mark = self.bill.snapshot()
            metrics.update(
                {"qpu/epoch/circuits": float(done.circuits), "qpu/epoch/shots": float(self.bill.shots_of(done))}
            )
        if self.privacy is not None:
            metrics.update(self.privacy.round())
        if self.defence is not None and self.defence.epsilon() is not None:
            metrics["privacy/dp_epsilon"] = self.defence.epsilon()
        f1 = metrics.get("val/f1_macro")
        if self.reached is None and f1 is not None and f1 >= self.fed.target_f1:
            self.reached = {"comm/mb_to_target": tot["total"] / MB, "comm/rounds_to_target": rnd}
            comm.update(self.reached)
        metrics.update(comm)
        self.engine.history[-1].update(comm)
        self.rec.log_metrics(metrics, step=rnd)
        loss = metrics.get("val/loss", float("inf"))
        if self.best is None or loss < self.best[0]:
            self.best = (loss, rnd, {k: v.detach().clone() for k, v in self.model.state_dict().items()})
            self._save("best.ckpt", rnd)
        self._save("last.ckpt", rnd)
        print(
            f"round {rnd}/{self.fed.rounds}: train/loss={metrics['train/loss']:.4f} "
            f"val/f1_macro={f1 if f1 is not None else float('nan'):.4f} "
            f"comm={tot['total'] / MB:.2f} MB ({metrics['time/round_s']:.2f} s)",
            flush=True,
        )

    def _save(self, name: str, rnd: int) -> None:
        """An hqexp checkpoint (``hqexp eval`` reads it) that also resumes the federation."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "hqexp": {**self.meta, "federation": {"round": rnd, "mode": self.fed.mode}},
            "state_dict": {f"model.{k}": v for k, v in self.model.state_dict().items()},
            "federation": {
                "round": rnd,
                "protocol": self.protocol.state_dict(),
                "ledger": [dataclasses.asdict(t) for t in self.ledger.transfers],  # plain values: data
                "history": self.engine.history,
                "link_s": self.link_s,
                "reached": self.reached,
                "best": self.best[:2] if self.best else None,
            },
        }
        if name == "best.ckpt" and self.best is not None:
            state["state_dict"] = {f"model.{k}": v for k, v in self.best[2].items()}
        from hqexp.interrupts import write_atomically

        write_atomically(self.ckpt_dir / name, lambda tmp: torch.save(state, tmp))

    def _resume(self) -> int:
        """With ``ckpt_path`` of a federated checkpoint: continue after its round."""
        path = self.cfg.ckpt_path
        if path is None:
            return 0
        ckpt = safeload.load(path, f"ckpt_path {path!r}", safeload.trusted(self.cfg))
        fed = ckpt.get("federation") if isinstance(ckpt, dict) else None
        if fed is None or ckpt.get("hqexp", {}).get("federation", {}).get("mode") != self.fed.mode:
            raise ConfigError(f"ckpt_path {path!r} is not a checkpoint of a federation={self.fed.mode} run")
        self.protocol.load_state_dict(fed["protocol"])
        self.ledger.transfers = [t if isinstance(t, Transfer) else Transfer(**t) for t in fed["ledger"]]
        self.engine.history = list(fed["history"])
        self.link_s, self.reached = fed["link_s"], fed["reached"]
        self.rec.set_tags(
            {"resumed_from": str(path), "resumed_round": str(fed["round"]), **safeload.trust_tag(self.cfg)}
        )
        return int(fed["round"])

    # ------------------------------------------------------------ the end
    def _test(self, elapsed: float) -> dict:
        from hqexp.tracking import plots

        if self.best is not None:  # test the round with the best validation loss, as Lightning does
            self.model.load_state_dict(self.best[2])
        mark = self.bill.snapshot()
        test, pred = self.engine.evaluate("test")
        from hqexp.quantum.tally import difference

        self.bill.test_counts = difference(self.bill.snapshot(), mark)
        self.bill.test_samples = len(self.engine.data["test"])
        test.update(adversarial_scores(self.cfg, self.engine.protocol.eval_model(), self.dm, self.engine.loss_fn))
        if self.privacy is not None:
            t0 = time.perf_counter()
            test.update(self.privacy.final())
            test["time/privacy_final_s"] = time.perf_counter() - t0
        lat = {"latency/ms_per_sample": pred.ms_per_sample}
        rounds = len(self.engine.history)
        cost = {
            "time/fit_s": elapsed,
            "time/epochs": rounds * self.fed.local_epochs,
            "time/per_round_s": elapsed / max(rounds, 1),
            "federation/best_round": self.best[1] if self.best else 0,
        }
        self.rec.log_metrics({**test, **lat, **cost}, step=rounds)
        self.rec.set_tags({"target_reached": str(self.reached is not None).lower()})
        rows = self.engine.history
        hist = {k: [(r["round"], r[k]) for r in rows if k in r] for k in {k for r in rows for k in r}}
        series = {"val/f1_macro": ([r["round"] for r in rows], [r.get("val/f1_macro") for r in rows])}
        self.rec.log_figure(
            plots.lines(series, "validation macro F1 by round", "round", "val/f1_macro"), "plots/f1_vs_round.png"
        )
        mb = ([r["comm/total_bytes"] / MB for r in rows], series["val/f1_macro"][1])
        self.rec.log_figure(
            plots.lines(
                {"val/f1_macro": mb},
                "validation macro F1 by data sent",
                "cumulative MB (up + down + sync)",
                "val/f1_macro",
            ),
            "plots/f1_vs_mb.png",
        )
        out = (
            {"probs": pred.probs, "targets": pred.targets}
            if self.dm.info.task != "multilabel"
            else {"scores": pred.probs, "targets": pred.targets}
        )
        record.log_plots(self.rec, hist, out, self.dm.info.class_names, type(self.engine.loss_fn).__name__)
        metrics = {**test, **lat, **cost, **(self.reached or {})}
        table = [{"epoch": r["round"] - 1, "step": r["round"], **r} for r in rows]
        record.log_tables(
            self.rec, hist, out, {k: v for k, v in metrics.items() if not k.startswith("client/")}, elapsed, rows=table
        )
        import pandas as pd

        self.rec.log_text(pd.DataFrame(self.ledger.rows()).to_csv(index=False), "comm/ledger.csv")
        for name in ("best.ckpt", "last.ckpt"):
            if (self.ckpt_dir / name).exists():
                self.rec.log_artifact(self.ckpt_dir / name, "checkpoints")
        return metrics
