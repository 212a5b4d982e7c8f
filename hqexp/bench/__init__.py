"""``hqexp bench``: speed measured as ratios against peers in one process.

``backends``: for each (n_qubits, n_layers, batch) of the grid, the median time of
forward and of forward+backward for every available backend, after warm-up, and
its ratio to ``torch``. For ``torch`` also the achieved memory traffic: a modelled
byte count (every pass over the state reads and writes it once) divided by time.

``ecg``: for each ECG model, training throughput (samples/s of forward + backward +
AdamW step at ``ecg.batch``) and inference latency (ms per sample at batch 1 and at
``ecg.batch``) on random 12-lead input at ``ecg.sampling_rate``, with ratios to the
first model listed.
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hqexp.errors import ConfigError

SUITES = ("backends", "ecg")


def _time(fn, warmup: int, repeats: int, budget: float) -> float | None:
    """Median seconds of ``fn()``; None when one warm-up call exceeds ``budget``."""
    for _ in range(max(1, warmup)):
        t0 = time.perf_counter()
        fn()
        if time.perf_counter() - t0 > budget:
            return None
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def modelled_forward_bytes(n: int, layers: int, batch: int, itemsize: int = 8) -> int:
    """Bytes the torch simulator's forward moves, by its pass structure.

    Product-state build ~1 write; per later layer ceil(n/k) group passes; one
    entangler pass per layer; the measurement reads once. A pass = read + write.
    """
    from hqexp.quantum.statevector import _group_size

    state = batch * 2**n * itemsize
    passes = 0.5 + (layers - 1) * math.ceil(n / _group_size(n)) + layers + 0.5
    return int(2 * state * passes)


def bench_backends(cfg: DictConfig) -> list[dict]:
    import torch

    from hqexp.quantum import Ansatz, available_backends, expval, get_backend

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    avail = available_backends()
    names = list(cfg.backends)
    unknown = [b for b in names if b not in avail]
    if unknown:
        raise ConfigError(f"unknown backend(s) {unknown}; choose from: {', '.join(avail)}")
    if "torch" not in names:
        names.insert(0, "torch")
    rows = []
    for point in cfg.grid:
        if len(point) != 3:
            raise ConfigError(f"each grid entry must be [n_qubits, n_layers, batch], got {list(point)}")
        n, L, B = (int(v) for v in point)
        ansatz = Ansatz(n, L, **OmegaConf.to_container(cfg.ansatz, resolve=True))
        g = torch.Generator().manual_seed(0)
        dev = torch.device(cfg.device)
        x = (torch.rand(B, n, generator=g) * math.pi).to(dev)
        w = (torch.rand(ansatz.weight_shape, generator=g) * 2 * math.pi).to(dev)
        ref = {}
        for name in names:
            if avail[name] is not None:
                rows.append({"n_qubits": n, "n_layers": L, "batch": B, "backend": name,
                             "status": "unavailable: " + avail[name]})
                continue
            be = get_backend(name)

            def fwd():
                with torch.no_grad():
                    expval(ansatz, x, w, be)

            def fwd_bwd():
                xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
                expval(ansatz, xx, ww, be).sum().backward()

            t_f = _time(fwd, cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
            t_fb = _time(fwd_bwd, cfg.warmup, cfg.repeats, cfg.max_seconds_per_call) if t_f else None
            row = {"n_qubits": n, "n_layers": L, "batch": B, "backend": name,
                   "status": "ok" if t_fb else f"skipped: slower than {cfg.max_seconds_per_call}s per call",
                   "fwd_ms": t_f * 1e3 if t_f else None, "fwd_bwd_ms": t_fb * 1e3 if t_fb else None}
            if name == "torch":
                ref = row
                if t_f:
                    row["torch_fwd_GBps"] = modelled_forward_bytes(n, L, B) / t_f / 1e9
            for k in ("fwd_ms", "fwd_bwd_ms"):
                if row.get(k) and ref.get(k):
                    row[f"ratio_{k[:-3]}"] = row[k] / ref[k]
            rows.append(row)
    return rows


def bench_ecg(cfg: DictConfig) -> list[dict]:
    """Training samples/s and inference ms/sample of the ECG models (see the module docstring)."""
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

        def step():
            opt.zero_grad(set_to_none=True)
            loss(model(x), y).backward()
            opt.step()

        model.train()
        t_train = _time(step, cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        model.eval()

        def infer(inp):
            def run():
                with torch.inference_mode():  # what Lightning's test/predict loops use
                    model(inp)
            return run

        t_1 = _time(infer(x[:1]), cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        t_b = _time(infer(x), cfg.warmup, cfg.repeats, cfg.max_seconds_per_call)
        row = {"model": name, "params": count_parameters(model)["total"], "batch": B, "sampling_rate": e.sampling_rate,
               "train_samples_per_s": B / t_train if t_train else None,
               "infer_ms_per_sample_b1": t_1 * 1e3 if t_1 else None,
               "infer_ms_per_sample_batch": t_b * 1e3 / B if t_b else None}
        if ref is None:
            ref = row
        for k in ("train_samples_per_s", "infer_ms_per_sample_b1"):
            if row[k] and ref[k]:
                row[f"ratio_{k}"] = row[k] / ref[k]
        rows.append(row)
    return rows


def _ecg_table(rows: list[dict]) -> str:
    cols = ["model", "params", "train_samples_per_s", "infer_ms_per_sample_b1", "infer_ms_per_sample_batch",
            "ratio_train_samples_per_s", "ratio_infer_ms_per_sample_b1"]
    return _format(rows, cols)


def _format(rows: list[dict], cols: list[str]) -> str:
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    body = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(b[i][:60]) for b in body)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v[:60].ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(b) for b in body)])


def _table(rows: list[dict]) -> str:
    cols = ["n_qubits", "n_layers", "batch", "backend", "fwd_ms", "fwd_bwd_ms", "ratio_fwd", "ratio_fwd_bwd",
            "torch_fwd_GBps", "status"]
    return _format(rows, cols)



def run_bench(cfg: DictConfig) -> list[dict]:
    if cfg.suite not in SUITES:
        raise ConfigError(f"unknown bench suite {cfg.suite!r}; choose one of: {', '.join(SUITES)}")
    import torch

    if cfg.suite == "ecg":
        rows = bench_ecg(cfg)
        print(f"hqexp bench ecg — torch {torch.__version__}, {torch.get_num_threads()} threads; ratios are to "
              f"{rows[0]['model']} (train: higher = faster; latency: higher = slower)")
        print(_ecg_table(rows))
    else:
        rows = bench_backends(cfg)
        print(f"hqexp bench backends — torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"device {cfg.device}; ratio = backend time / torch time (higher = torch faster)")
        print(_table(rows))
    path = Path(cfg.csv if cfg.suite == "backends" else str(cfg.csv).replace("bench_backends", f"bench_{cfg.suite}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print(f"CSV: {path}")
    if cfg.log_to_mlflow:
        from hqexp.tracking.mlflow_run import Recorder

        rec = Recorder.start(OmegaConf.to_container(cfg.mlflow, resolve=True), run_name=f"bench {cfg.suite}",
                             tags={"hqexp.command": "bench", "hqexp.bench_suite": cfg.suite})
        rec.log_params({"grid": str(list(map(list, cfg.grid))), "threads": torch.get_num_threads(),
                        "torch": torch.__version__})
        rec.log_artifact(path, "bench")
        for r in rows:
            if cfg.suite == "ecg":
                rec.log_metrics({f"bench/ecg/{r['model']}/{k}": r[k] for k in
                                 ("train_samples_per_s", "infer_ms_per_sample_b1", "infer_ms_per_sample_batch")
                                 if r.get(k)})
                continue
            for k in ("ratio_fwd", "ratio_fwd_bwd", "torch_fwd_GBps"):
                if r.get(k):
                    rec.log_metrics({f"bench/{r['backend']}/{k}/n{r['n_qubits']}_L{r['n_layers']}_B{r['batch']}":
                                     r[k]})
        rec.terminate("FINISHED")
        print(f"MLflow run {rec.run_id}")
    return rows
