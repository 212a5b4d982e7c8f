"""``hqexp bench backends``: every available backend timed against the reference backend.

For each (n_qubits, n_layers, batch) of the grid, the median time of forward and of
forward+backward for every available backend, after warm-up, and its ratio to the
reference (the ``backend`` group, default ``torch``). For ``torch`` also the achieved
memory traffic: a modelled byte count (every pass over the state reads and writes it
once) divided by time.
"""

from __future__ import annotations

import logging
import math
import warnings

from omegaconf import DictConfig, OmegaConf

from hqexp.bench.table import format_table, median_time
from hqexp.errors import ConfigError

COLUMNS = [
    "n_qubits",
    "n_layers",
    "batch",
    "backend",
    "fwd_ms",
    "fwd_bwd_ms",
    "ratio_fwd",
    "ratio_fwd_bwd",
    "compile_s",
    "torch_fwd_GBps",
    "status",
]
STANDARD = {"template": "strongly_entangling", "embedding": "angle_x", "measurement": "z_each"}


def modelled_forward_bytes(n: int, layers: int, batch: int, itemsize: int = 8) -> int:
    """Bytes the torch simulator's forward moves, by its pass structure.

    Product-state build ~1 write; per later layer ceil(n/k) group passes; one
    entangler pass per layer; the measurement reads once. A pass = read + write.
    """
    from hqexp.quantum.statevector import group_size

    state = batch * 2**n * itemsize
    passes = 0.5 + (layers - 1) * math.ceil(n / group_size(n)) + layers + 0.5
    return int(2 * state * passes)


def peer_configs(cfg: DictConfig) -> dict[str, dict]:
    """``{name: conf/backend mapping}``: the reference from ``cfg.backend``, the peers from
    their own group files (composed, so every backend is built by the same function)."""
    from hydra import compose

    ref = OmegaConf.to_container(cfg.backend, resolve=True)
    out = {ref["name"]: ref}
    for name in cfg.backends:
        if name in out:
            continue
        try:
            out[name] = OmegaConf.to_container(
                compose(config_name="bench", overrides=[f"backend={name}"]).backend, resolve=True
            )
        except Exception as exc:
            raise ConfigError(f"bench: unknown backend {name!r} ({str(exc).splitlines()[0]})") from None
    sampling = device_mode(cfg)
    if sampling:  # what a device does, the same on every backend: shots and the gradient rule
        for bcfg in out.values():
            bcfg["options"] = {**(bcfg.get("options") or {}), **sampling, "seed": 0}
    noise = bench_noise(cfg)
    for bcfg in out.values():  # the same noise on every backend, each in its own form
        bcfg["noise"] = noise
    return out


def bench_noise(cfg: DictConfig) -> dict | None:
    """The bench's ``noise`` mapping (None without noise)."""
    noise = OmegaConf.to_container(cfg.noise, resolve=True) if cfg.get("noise") is not None else None
    return noise if noise and noise.get("kind", "none") != "none" else None


def device_mode(cfg: DictConfig) -> dict:
    """``{shots, grad}`` the bench applies to every backend (empty for exact autograd)."""
    shots, grad = cfg.get("shots"), cfg.get("grad") or "exact"
    return {"shots": shots, "grad": grad} if shots is not None or grad != "exact" else {}


def bench_backends(cfg: DictConfig) -> list[dict]:
    """One row per grid point and backend (see the module docstring)."""
    import torch

    from hqexp.quantum import Ansatz

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    from hqexp.bench.peers import PEERS

    unknown = [p for p in (cfg.get("peers") or []) if p not in PEERS]
    if unknown:
        raise ConfigError(f"unknown peer {unknown[0]!r}; choose from: {', '.join(PEERS)} (peers=[] for none)")
    backends = peer_configs(cfg)
    rows = []
    total, done = len(cfg.grid) * len(backends), 0
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
        for name, bcfg in backends.items():
            done += 1
            print(f"[{done}/{total}] n={n} L={L} B={B} {name} ...", end=" ", flush=True)
            row = _time_backend(cfg, name, bcfg, ansatz, x, w)
            if name == cfg.backend.name:
                ref = row
                if row.get("fwd_ms") and name == "torch":
                    row["torch_fwd_GBps"] = modelled_forward_bytes(n, L, B) / (row["fwd_ms"] / 1e3) / 1e9
            rows.append(_with_ratios(row, ref))
        for name in cfg.get("peers") or []:
            from hqexp.bench.peers import NOISY_PEERS

            noisy = bench_noise(cfg)
            if (name in NOISY_PEERS) != (noisy is not None) or (noisy and noisy.get("kind") != "depolarizing"):
                why = "noiseless simulator" if name not in NOISY_PEERS else "needs noise=depolarizing"
                rows.append({"n_qubits": n, "n_layers": L, "batch": B, "backend": name, "status": f"skipped: {why}"})
                continue
            if device_mode(cfg):
                rows.append(
                    {
                        "n_qubits": n,
                        "n_layers": L,
                        "batch": B,
                        "backend": name,
                        "status": "skipped: outside simulators are timed exact (shots=null, grad=exact)",
                    }
                )
                continue
            rows.append(_with_ratios(_time_peer(cfg, name, ansatz, x, w), ref))
    return rows


def _time_backend(cfg: DictConfig, name: str, bcfg: dict, ansatz, x, w) -> dict:
    """One row for one of our backends: median forward and forward+backward, compile time apart."""
    import torch

    from hqexp.errors import BackendUnavailable, QuantumMemoryError
    from hqexp.quantum import expval, from_config

    base = {"n_qubits": ansatz.n_qubits, "n_layers": ansatz.n_layers, "batch": x.shape[0], "backend": name}
    try:
        be = from_config({**bcfg, "fallback": []})
    except BackendUnavailable as exc:
        print("unavailable", flush=True)
        return {**base, "status": f"unavailable: {exc}"}

    def fwd():
        with torch.no_grad():
            expval(ansatz, x, w, be)

    xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()

    def fwd_bwd():  # as in a training step: persistent leaves, gradients reset to None
        xx.grad = ww.grad = None
        expval(ansatz, xx, ww, be).sum().backward()

    budget = float(cfg.max_seconds_per_call)
    compiling = getattr(be, "compiled", None) is not None  # the torch backend's compiled path
    try:
        if compiling:  # compile first, timed apart (compile_s)
            fwd()
            fwd_bwd()
        t_f = median_time(fwd, cfg.warmup, cfg.repeats, budget)
        # a backward costs several forwards (parameter shift: 2 per angle): skip hopeless ones
        est = t_f * (1 + be.backward_cost(ansatz)) if t_f else None
        t_fb = median_time(fwd_bwd, cfg.warmup, cfg.repeats, budget) if est and est < budget else None
        if t_fb:
            status = "ok"
        elif not t_f:
            status = f"skipped: one call takes more than {budget:g} s"
        elif est >= budget:
            status = f"fwd+bwd skipped: estimated {est:.2g} s per call (max_seconds_per_call={budget:g})"
        else:
            status = f"fwd+bwd skipped: one call took more than {budget:g} s"
    except QuantumMemoryError as exc:
        t_f = t_fb = None
        status = f"skipped: {exc}"
    except MemoryError as exc:  # a peer backend's own allocation failure
        t_f = t_fb = None
        status = f"failed: out of memory ({exc})"
    row = {
        **base,
        "status": status,
        "fwd_ms": t_f * 1e3 if t_f else None,
        "fwd_bwd_ms": t_fb * 1e3 if t_fb else None,
        "compile_s": be.compile_s if compiling else None,
    }
    _progress(row, "" if status == "ok" else f" ({status[:80]})")
    return row


def _with_ratios(row: dict, ref: dict) -> dict:
    """``row`` with its times as ratios to the reference row's, where both were measured."""
    for k in ("fwd_ms", "fwd_bwd_ms"):
        if row.get(k) and ref.get(k):
            row[f"ratio_{k[:-3]}"] = row[k] / ref[k]
    return row


def _progress(row: dict, suffix: str) -> None:
    print(
        f"fwd {row['fwd_ms'] or float('nan'):.3g} ms, fwd+bwd {row['fwd_bwd_ms'] or float('nan'):.3g} ms" + suffix,
        flush=True,
    )


def _time_peer(cfg: DictConfig, name: str, ansatz, x, w) -> dict:
    """One row for an outside simulator: agreement with torch first, then the timings."""
    import numpy as np

    from hqexp.bench import peers

    n, L, B = ansatz.n_qubits, ansatz.n_layers, x.shape[0]
    base = {"n_qubits": n, "n_layers": L, "batch": B, "backend": name}
    print(f"  peer {name} ...", end=" ", flush=True)
    reason = peers.missing(name)
    if reason is None and any(getattr(ansatz, k) != v for k, v in STANDARD.items()):
        reason = f"peers run {STANDARD['template']} / {STANDARD['embedding']} / {STANDARD['measurement']} only"
    if reason is not None:
        print(reason, flush=True)
        return {**base, "status": f"unavailable: {reason}"}
    xn, wn = x.cpu().numpy().astype(np.float32), w.cpu().numpy().astype(np.float32)
    with warnings.catch_warnings():  # the peers' own deprecation chatter would split the progress line
        warnings.simplefilter("ignore")
        logging.getLogger("tensorcircuit").setLevel(logging.ERROR)  # "optax not installed": not used here
        try:
            return _check_and_time(cfg, peers.build(name, n, L, xn, wn, bench_noise(cfg)), ansatz, x, w, xn, wn, base)
        except Exception as exc:  # noqa: BLE001 - an outside simulator that fails (e.g. out of memory) is a row
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            print(f"failed: {first}", flush=True)
            return {**base, "status": f"failed: {type(exc).__name__}: {first}"}


def _check_and_time(cfg: DictConfig, peer, ansatz, x, w, xn, wn, base: dict) -> dict:
    import numpy as np

    from hqexp.quantum import expval

    xx, ww = x.double().clone().requires_grad_(), w.double().clone().requires_grad_()
    want = expval(ansatz, xx, ww, "torch", dtype="complex128", noise=bench_noise(cfg))
    want.sum().backward()
    xp, wp = peer.native(xn, wn)
    got = peer.fwd_bwd(xp, wp)
    err = max(
        float(np.abs(np.asarray(a, dtype=np.float64) - b.detach().numpy()).max())
        for a, b in zip(got, (want, xx.grad, ww.grad))
    )
    if err > 1e-4:
        print(f"disagrees with torch by {err:.2g}: not timed", flush=True)
        return {**base, "status": f"disagrees with torch by {err:.2g}: not timed"}
    budget = float(cfg.max_seconds_per_call)
    t_f = median_time(lambda: peer.fwd(xp, wp), cfg.warmup, cfg.repeats, budget)
    t_fb = median_time(lambda: peer.fwd_bwd(xp, wp), cfg.warmup, cfg.repeats, budget) if t_f else None
    row = {
        **base,
        "status": f"ok (agrees to {err:.1e})",
        "compile_s": peer.compile_s,
        "fwd_ms": t_f * 1e3 if t_f else None,
        "fwd_bwd_ms": t_fb * 1e3 if t_fb else None,
    }
    _progress(row, f" (compile {peer.compile_s:.1f} s)")
    return row


def table(rows: list[dict]) -> str:
    return format_table(rows, COLUMNS)
