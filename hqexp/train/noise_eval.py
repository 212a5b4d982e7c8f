"""The test again under other noise: "trained noiseless, tested on the device" in one run.

``noise_eval`` is a list of ``conf/noise`` mappings, each with a ``name``; after the run's own
test, every quantum layer is moved to the same backend under each of them in turn and the model
is scored again (``noise_eval/<name>/test/<metric>``), then put back. A model without a quantum
layer is scored too — noise cannot act on it, and its numbers say so by not moving.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError
from hqexp.models import quantum_layers
from hqexp.quantum import resolve_backend
from hqexp.train.scores import test_scores


def entries(cfg: DictConfig) -> list[dict]:
    """The ``noise_eval`` list, checked: each a noise mapping with a unique ``name``."""
    raw = OmegaConf.to_container(cfg.noise_eval, resolve=True) if cfg.get("noise_eval") else []
    out, names = [], set()
    for e in raw:
        if not isinstance(e, dict) or "name" not in e or "kind" not in e:
            raise ConfigError(f"each noise_eval entry needs a name and a kind (a conf/noise mapping), got {e!r}")
        if e["name"] in names:
            raise ConfigError(f"noise_eval names must be unique, {e['name']!r} repeats")
        names.add(e["name"])
        out.append(e)
    return out


def evaluate_under_noise(cfg: DictConfig, task, dm, wanted: list[dict]) -> dict[str, float]:
    """``noise_eval/<name>/test/<metric>`` for every entry of ``wanted``."""
    layers = quantum_layers(task.model)
    before = {name: q.backend for name, q in layers.items()}
    options = dict(OmegaConf.to_container(cfg.backend.options, resolve=True) or {})
    out: dict[str, float] = {}
    task.model.eval()
    try:
        for e in wanted:
            noise = {k: v for k, v in e.items() if k != "name"}
            for q in layers.values():
                q.use_backend(resolve_backend(cfg.backend.name, options=options, noise=noise))
            for k, v in test_scores(task, dm).items():
                out[f"noise_eval/{e['name']}/{k}"] = v
            shown = {
                k: out[f"noise_eval/{e['name']}/{k}"]
                for k in ("test/acc", "test/auroc", "test/rmse")
                if f"noise_eval/{e['name']}/{k}" in out
            }
            print(f"noise_eval {e['name']}: " + "  ".join(f"{k}={v:.4f}" for k, v in shown.items()), flush=True)
    finally:
        for name, q in layers.items():
            q.use_backend(before[name])
    return out
