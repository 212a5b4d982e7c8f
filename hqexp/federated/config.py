"""``federation.*`` read and checked: every impossible setting is one line, before any work."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from hqexp.errors import ConfigError
from hqexp.federated.partition import SCHEMES, Partition
from hqexp.federated.protocols import MODES

ENGINES = ("inprocess", "flower")
FLOWER_KEYS = {
    "superlink": None,
    "timeout_s": 120.0,
    "cpus_per_client": 1.0,
    "insecure": False,
    "root_certificates": None,
}


@dataclass(frozen=True)
class FedConfig:
    mode: str
    engine: str = "inprocess"
    n_clients: int | None = 4
    partition: str = "iid"
    alpha: float = 0.5
    rounds: int = 10
    local_epochs: int = 1
    fraction: float = 1.0
    cut: int | str = 1
    link_mbps: float = 100.0
    latency_ms: float = 5.0
    target_f1: float = 0.8
    server_lr: float | None = None
    flower: dict | None = None  # superlink, timeout_s, cpus_per_client (engine=flower)

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> FedConfig:
        raw = OmegaConf.to_container(cfg.federation, resolve=True)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown federation key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        fed = cls(**raw)
        fed.check()
        return fed

    def check(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"federation.{key} must be {what}, got {getattr(self, key)!r}")

        def is_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        need(self.mode in MODES, "mode", f"one of {', '.join(MODES)}")
        need(self.engine in ENGINES, "engine", f"one of {', '.join(ENGINES)}")
        need(self.partition in SCHEMES, "partition", f"one of {', '.join(SCHEMES)}")
        need(
            self.n_clients is None or (is_int(self.n_clients) and self.n_clients >= 1),
            "n_clients",
            "an int >= 1 (or null with partition=natural)",
        )
        need(
            self.n_clients is not None or self.partition == "natural",
            "n_clients",
            "an int >= 1 unless partition=natural",
        )
        need(is_int(self.rounds) and self.rounds >= 1, "rounds", "an int >= 1")
        need(is_int(self.local_epochs) and self.local_epochs >= 1, "local_epochs", "an int >= 1")
        need(isinstance(self.fraction, (int, float)) and 0 < self.fraction <= 1, "fraction", "in (0, 1]")
        need(isinstance(self.alpha, (int, float)) and self.alpha > 0, "alpha", "> 0")
        need(isinstance(self.link_mbps, (int, float)) and self.link_mbps > 0, "link_mbps", "> 0")
        need(isinstance(self.latency_ms, (int, float)) and self.latency_ms >= 0, "latency_ms", ">= 0")
        need(isinstance(self.target_f1, (int, float)) and 0 < self.target_f1 <= 1, "target_f1", "in (0, 1]")
        need(
            self.server_lr is None or (isinstance(self.server_lr, (int, float)) and self.server_lr > 0),
            "server_lr",
            "a positive number or null",
        )
        need(is_int(self.cut) or isinstance(self.cut, str), "cut", "a stage number or name")
        fl = self.flower or {}
        unknown = sorted(set(fl) - set(FLOWER_KEYS))
        if unknown:
            raise ConfigError(f"unknown federation.flower key(s) {', '.join(unknown)}; known: {', '.join(FLOWER_KEYS)}")
        fl = {**FLOWER_KEYS, **fl}
        if not (isinstance(fl["timeout_s"], (int, float)) and fl["timeout_s"] > 0):
            raise ConfigError(f"federation.flower.timeout_s must be > 0, got {fl['timeout_s']!r}")
        if not (isinstance(fl["cpus_per_client"], (int, float)) and fl["cpus_per_client"] > 0):
            raise ConfigError(f"federation.flower.cpus_per_client must be > 0, got {fl['cpus_per_client']!r}")
        sl = fl["superlink"]
        if sl is not None and not (isinstance(sl, str) and sl.rpartition(":")[2].isdigit()):
            raise ConfigError(
                f"federation.flower.superlink must be host:port (the SuperLink's control API) or null, got {sl!r}"
            )
        if not isinstance(fl["insecure"], bool):
            raise ConfigError(f"federation.flower.insecure must be true or false, got {fl['insecure']!r}")
        root = fl["root_certificates"]
        if root is not None:
            if fl["insecure"]:
                raise ConfigError(
                    "federation.flower.root_certificates is for TLS; federation.flower.insecure=true turns TLS off"
                )
            if not (isinstance(root, str) and Path(root).is_file()):
                raise ConfigError(
                    f"federation.flower.root_certificates={root!r} is not a file (the PEM of the CA that signed the "
                    "SuperLink's certificate; make certs writes certs/ca.crt)"
                )
            fl["root_certificates"] = str(Path(root).resolve())
        object.__setattr__(self, "flower", fl)

    def clients(self, dm, seed: int) -> Partition:
        """The samples of every split of data module ``dm`` assigned to clients — the same
        seeded assignment wherever it is computed (the server, and each Flower client)."""
        from hqexp.federated.partition import partition

        info = dm.info
        return partition(
            self.partition,
            self.n_clients,
            {s: dm.targets(s) for s in ("train", "val", "test")},
            info.groups,
            self.alpha,
            seed,
            info.group_kind or "group",
        )

    def tags(self, model: nn.Module, parts: Partition) -> dict[str, str]:
        """The run's federation tags."""
        from hqexp.models import quantum_layers

        head = getattr(model, "server_head_kind", "quantum" if quantum_layers(model) else "classical")
        return {
            "federation": self.mode,
            "n_clients": str(parts.n_clients),
            "partition": self.partition,
            "cut": "none" if self.mode == "fl" else str(self.cut),
            "server_head": head,
            "federation.engine": self.engine,
            "labels_disclosed": str(self.mode != "sl_ushaped").lower(),
        }
