"""``hqexp bench ecg``: training throughput and inference latency of the ECG models.

For each model: training samples/s (forward + backward + AdamW step at ``ecg.batch``)
and inference latency (ms per sample at batch 1 and at ``ecg.batch``) on random 12-lead
input at ``ecg.sampling_rate``, with ratios to the first model listed.
"""

from __future__ import annotations

from omegaconf import DictConfig

from hqexp.bench.table import format_table, median_time
from hqexp.errors import ConfigError

COLUMNS = [
    "model",
    "params",
    "train_samples_per_s",
    "infer_ms_per_sample_b1",
    "infer_ms_per_sample_batch",
    "ratio_train_samples_per_s",
    "ratio_infer_ms_per_sample_b1",
]


def bench_ecg(cfg: DictConfig) -> list[dict]:
    """One row per model (see the module docstring)."""
    import torch
    from hydra import compose
    from hydra.utils import instantiate

    from hqexp.models import count_parameters

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    e = cfg.ecg
    B, T = int(e.batch), int(e.sampling_rate * 10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 12, T, generator=g)
    y = (torch.rand(B, 5, generator=g) > 0.7).float()
    rows, ref = [], None
    for name in e.models:
        try:
            mcfg = compose(config_name="train", overrides=[f"model={name}", "dataset=synthetic_ecg"]).model
        except Exception as exc:
            raise ConfigError(f"bench ecg: cannot compose model={name}: {str(exc).splitlines()[0]}") from None
        torch.manual_seed(0)
        model = instantiate(mcfg, n_features=12, n_classes=5, _convert_="all")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss = torch.nn.BCEWithLogitsLoss()

        def step(opt=opt, loss=loss, model=model):
            opt.zero_grad(set_to_none=True)
            loss(model(x), y).backward()
            opt.step()

        model.train()
        t_train = median_time(step, cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        model.eval()

        def infer(inp, model=model):
            def run():
                with torch.inference_mode():  # what Lightning's test/predict loops use
                    model(inp)

            return run

        t_1 = median_time(infer(x[:1]), cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        t_b = median_time(infer(x), cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        row = {
            "model": name,
            "params": count_parameters(model)["total"],
            "batch": B,
            "sampling_rate": e.sampling_rate,
            "train_samples_per_s": B / t_train if t_train else None,
            "infer_ms_per_sample_b1": t_1 * 1e3 if t_1 else None,
            "infer_ms_per_sample_batch": t_b * 1e3 / B if t_b else None,
        }
        if ref is None:
            ref = row
        for k in ("train_samples_per_s", "infer_ms_per_sample_b1"):
            if row[k] and ref[k]:
                row[f"ratio_{k}"] = row[k] / ref[k]
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    return format_table(rows, COLUMNS)
