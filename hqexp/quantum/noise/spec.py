"""The ``noise`` config group as an object: one :class:`~hqexp.quantum.noise.model.NoiseModel`
per circuit width, built from ``kind`` and its keys (see :mod:`hqexp.quantum.noise.model`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from hqexp.errors import ConfigError
from hqexp.quantum.noise import channels as ch
from hqexp.quantum.noise.device import device_model
from hqexp.quantum.noise.model import NoiseModel

KINDS = ("none", "depolarizing", "thermal", "readout", "device")


@dataclass
class NoiseSpec:
    """The ``noise`` config group: one :class:`NoiseModel` per circuit width, cached."""

    kind: str = "none"
    params: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping | NoiseSpec | None) -> NoiseSpec:
        if isinstance(cfg, NoiseSpec):
            return cfg
        if cfg is None:
            return cls()
        try:
            items = dict(cfg.items())
        except AttributeError:
            raise ConfigError(f"noise must be a mapping with a kind, got {type(cfg).__name__}") from None
        kind = items.pop("kind", "none")
        if kind not in KINDS:
            raise ConfigError(f"unknown noise kind {kind!r}; choose one of: {', '.join(KINDS)}")
        spec = cls(kind, items)
        spec.model(2)  # every key checked now, before any work
        return spec

    @property
    def active(self) -> bool:
        return self.kind != "none"

    @cached_property
    def _models(self) -> dict[int, NoiseModel]:
        return {}

    def model(self, n: int) -> NoiseModel:
        hit = self._models.get(n)
        if hit is None:
            hit = self._models[n] = _build(self.kind, self.params, n)
        return hit

    def __hash__(self) -> int:  # specs are used as cache keys alongside the ansatz
        return hash((self.kind, tuple(sorted((k, str(v)) for k, v in self.params.items()))))

    def __eq__(self, other) -> bool:
        return isinstance(other, NoiseSpec) and hash(self) == hash(other)


_ALLOWED = {
    "none": set(),
    "depolarizing": {"p1", "p2"},
    "thermal": {"t1", "t2", "gate_1q_s", "gate_2q_s"},
    "readout": {"p01", "p10"},
    "device": {"device", "qubits"},
}


def _build(kind: str, params: dict, n: int) -> NoiseModel:
    unknown = sorted(set(params) - _ALLOWED[kind])
    if unknown:
        keys = ", ".join(sorted(_ALLOWED[kind]))
        raise ConfigError(f"noise={kind} takes no key(s) {', '.join(unknown)}; its keys: {keys}")
    if kind == "none":
        return NoiseModel("none", n)
    if kind == "depolarizing":
        p1 = ch.check_probability(params.get("p1", 0.0), "p1")
        p2 = ch.check_probability(params.get("p2", 0.0), "p2")
        return NoiseModel(kind, n, p1=(p1,) * n, p2=(((-1, -1), p2),))
    if kind == "thermal":
        t1, t2 = ch.check_times(params.get("t1"), params.get("t2"))
        g1, g2 = (_duration(params.get(k), f"noise.{k}") for k in ("gate_1q_s", "gate_2q_s"))
        return NoiseModel(kind, n, t1=(t1,) * n, t2=(t2,) * n, gate_1q_s=(g1,) * n, gate_2q_s=(((-1, -1), g2),))
    if kind == "readout":
        p01 = ch.check_probability(params.get("p01", 0.0), "p01")
        p10 = ch.check_probability(params.get("p10", 0.0), "p10")
        return NoiseModel(kind, n, readout_err=((p01, p10),) * n)
    return device_model(params.get("device"), n, params.get("qubits"))


def _duration(v: object, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ConfigError(f"{key} must be a non-negative duration in seconds, got {v!r}")
    return float(v)
