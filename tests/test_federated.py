"""Split and split-federated learning: partitions, the ledger against the SplitFed closed
forms, protocol equivalences, refusals, and the CLI end to end at tiny size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from hqexp.errors import ConfigError
from hqexp.federated import PROTOCOLS, Channel, Ledger, Setup, partition
from hqexp.federated.channel import state_bytes
from hqexp.federated.parts import cut_model, fedavg
from hqexp.models.split import SplitConv1D

Q = {
    "n_qubits": 3,
    "n_layers": 1,
    "template": "strongly_entangling",
    "embedding": "angle_x",
    "measurement": "z_each",
    "entangler": "cnot",
}
TORCH = {"name": "torch", "options": {"dtype": "complex64"}}


def _model(head="quantum", channels=(4, 8), seed=0):
    torch.manual_seed(seed)
    return SplitConv1D(n_features=10, n_classes=3, quantum=Q, backend=TORCH, channels=list(channels), server_head=head)


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def _setup(model, sizes, cut=1, lr=1e-2):
    ledger = Ledger()
    opt = lambda params, role: torch.optim.AdamW(params, lr=lr, weight_decay=0.0)  # noqa: E731
    return Setup(model, len(sizes), sizes, Channel(ledger, 100.0, 5.0), torch.nn.CrossEntropyLoss(), opt, cut), ledger


def _loaders(x, y, parts, batch=8):
    return {
        k: DataLoader(TensorDataset(x[idx], y[idx]), batch_size=batch, shuffle=False) for k, idx in enumerate(parts)
    }


# ------------------------------------------------------------------ partitions
def test_iid_and_dirichlet_cover_every_sample_once():
    y = np.repeat(np.arange(3), 40)
    labels = {"train": y, "val": y[:30], "test": y[:30]}
    for scheme in ("iid", "dirichlet"):
        p = partition(scheme, 4, labels, alpha=0.5, seed=1)
        for split, arr in labels.items():
            flat = np.sort(np.concatenate(p.clients[split]))
            assert np.array_equal(flat, np.arange(len(arr))), (scheme, split)
    # small alpha = label skew: clients' label histograms differ much more than iid ones
    skew = partition("dirichlet", 4, labels, alpha=0.1, seed=1)
    iid = partition("iid", 4, labels, seed=1)
    spread = lambda p: np.std([np.bincount(y[i], minlength=3) / len(i) for i in p.clients["train"]], 0).mean()  # noqa
    assert spread(skew) > 2 * spread(iid)


def test_natural_partition_is_one_client_per_group_and_refuses_too_many():
    groups = {
        "train": np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2),
        "val": np.array(["a", "b", "c"]),
        "test": np.array(["c", "a"]),
    }
    labels = {s: np.zeros(len(g), dtype=int) for s, g in groups.items()}
    p = partition("natural", None, labels, groups)
    assert p.names == ["a", "b", "c"] and p.sizes() == [5, 3, 2]
    assert [list(c) for c in p.clients["test"]] == [[1], [], [0]]
    two = partition("natural", 2, labels, groups)  # whole groups dealt to fewer clients
    assert sorted(two.sizes()) == [5, 5]
    with pytest.raises(ConfigError, match="n_clients=4 but the training split has only 3 groups"):
        partition("natural", 4, labels, groups)
    with pytest.raises(ConfigError, match="needs a dataset with a natural client"):
        partition("natural", 2, labels, None)


def test_empty_client_is_refused():
    y = np.array([0] * 50 + [1] * 2)
    labels = {"train": y, "val": y, "test": y}
    with pytest.raises(ConfigError, match="leaves client .* without training samples"):
        partition("dirichlet", 8, labels, alpha=0.001, seed=0)  # two labels, eight clients: hopeless


# ------------------------------------------------------------------ cutting
def test_cut_outside_the_model_is_one_line():
    m = _model()
    assert [n for n, _ in m.stages()] == ["block1", "block2", "encode", "server_head", "classifier"]
    parts = cut_model(m, "block2")
    assert len(parts.client) == 2 and len(parts.server) == 3
    for bad in (0, 5, "nope"):
        with pytest.raises(ConfigError, match="is outside model"):
            cut_model(m, bad)
    with pytest.raises(ConfigError, match="the client keeps the last stage too"):
        cut_model(m, 4, ushaped=True)
    x = torch.randn(5, 10)
    u = cut_model(m, 2, ushaped=True)
    assert torch.allclose(u.head(u.server(u.client(x))), m(x))


def test_fedavg_is_the_sample_weighted_mean():
    a, b = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor(7)}
    out = fedavg([a, b], [1, 3])
    assert torch.allclose(out["w"], torch.tensor([3.0, 5.0])) and int(out["n"]) == 3


# ------------------------------------------------------------------ the ledger
def _closed_form(mode, model, cut, sizes, batch_epochs=1):
    """Thapa et al. (2022), Table 1, per round, with what we add: labels (8 bytes each)."""
    p = sum(sizes) * batch_epochs
    K = len(sizes)
    parts = cut_model(model, cut, ushaped=mode == "sl_ushaped")
    with torch.no_grad():
        q = parts.client(torch.zeros(1, 10)).numel() * 4  # float32 smashed bytes per sample
    wc = state_bytes(parts.client.state_dict())
    W = state_bytes(model.state_dict())
    if mode == "fl":
        return {"up": 0, "down": 0, "sync": 2 * K * W}
    if mode == "sl":  # 2pq + ηK|W| (+ labels)
        return {"up": p * q + 8 * p, "down": p * q, "sync": K * wc}
    if mode in ("sflv1", "sflv2"):  # 2pq + 2ηK|W| (+ labels)
        return {"up": p * q + 8 * p, "down": p * q, "sync": 2 * K * wc}
    h = parts.server(parts.client(torch.zeros(1, 10))).numel() * 4
    wc += state_bytes(parts.head.state_dict())  # U-shaped: front + head pass on; no labels
    return {"up": p * q + p * h, "down": p * q + p * h, "sync": K * wc}


@pytest.mark.parametrize("mode", ["fl", "sl", "sflv1", "sflv2", "sl_ushaped"])
@pytest.mark.parametrize("K,cut", [(1, 1), (3, 1), (4, 2)])
def test_ledger_equals_the_closed_form(mode, K, cut):
    x, y = _data(48)
    model = _model()
    idx = np.array_split(np.arange(48), K)
    setup, ledger = _setup(model, [len(i) for i in idx], cut)
    proto = PROTOCOLS[mode](setup)
    for rnd in (1, 2):
        setup.channel.round = rnd
        proto.train_round(list(range(K)), _loaders(x, y, idx), local_epochs=1)
        want = _closed_form(mode, model, cut, [len(i) for i in idx])
        got = ledger.totals(rnd)
        assert {k: got[k] for k in want} == want, (mode, K, cut, rnd)
    if mode == "sl_ushaped":
        assert ledger.bytes(kinds=["labels"]) == 0  # labels never leave the client
    assert ledger.bytes() == ledger.totals()["total"]


def test_comm_scales_with_clients_samples_and_cut():
    x, y = _data(48)

    def total(K, n, cut):
        model = _model()
        idx = np.array_split(np.arange(n), K)
        setup, ledger = _setup(model, [len(i) for i in idx], cut)
        PROTOCOLS["sflv1"](setup).train_round(list(range(K)), _loaders(x, y, idx), 1)
        return ledger.totals()

    base = total(2, 24, 1)
    assert total(2, 48, 1)["up"] == 2 * base["up"]  # per-batch traffic ∝ p
    assert total(4, 24, 1)["sync"] == 2 * base["sync"]  # model sync ∝ K
    assert total(4, 24, 1)["up"] == base["up"]  # … but not the smashed data
    assert total(2, 24, 2)["up"] != base["up"]  # the cut changes q


# ------------------------------------------------------------------ equivalences
def test_split_learning_with_one_client_is_centralised_training():
    """The split step is the joint step: one client, same batches, same AdamW ⇒ same weights."""
    x, y = _data(40)
    a, b = _model(), _model()
    setup, _ = _setup(a, [40], cut=2)
    PROTOCOLS["sl"](setup).train_round([0], _loaders(x, y, [np.arange(40)]), local_epochs=2)
    opt = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.0)
    loader = _loaders(x, y, [np.arange(40)])[0]
    for _ in range(2):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(b(xb), yb).backward()
            opt.step()
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(p, q, atol=1e-5), n


def test_sflv1_equals_fedavg_of_the_whole_model():
    """SplitFed V1 averages both sides with the same weights FedAvg uses: same result."""
    x, y = _data(48)
    idx = np.array_split(np.arange(48), 3)
    out = []
    for mode in ("fl", "sflv1"):
        model = _model(seed=3)
        setup, _ = _setup(model, [len(i) for i in idx], cut=1)
        PROTOCOLS[mode](setup).train_round([0, 1, 2], _loaders(x, y, idx), 1)
        out.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.allclose(out[0], out[1], atol=1e-5)


def test_classical_twin_head_is_parameter_matched():
    q, c = _model("quantum"), _model("classical")
    nq = sum(p.numel() for p in q.server_head.parameters())
    nc = sum(p.numel() for p in c.server_head.parameters())
    assert abs(nc - nq) <= max(3, nq // 4)


# ------------------------------------------------------------------ the CLI end to end
BASE = ["dataset=iris", "trainer.max_epochs=3", "trainer.enable_progress_bar=false"]
FED = ["model=split_conv1d", *BASE, "model.quantum.n_qubits=2", "model.channels=[4,8]"]


def test_sflv1_run_records_rounds_ledger_clients_and_checkpoints(tmp_path):
    from helpers import artifacts, hqexp, runs

    out = hqexp(["train", *FED, "federation=sflv1", "federation.n_clients=3"], tmp_path)
    assert "round 3/3" in out.stdout
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED"
    t = run.data.tags
    assert (t["federation"], t["n_clients"], t["partition"], t["cut"], t["server_head"]) == (
        "sflv1",
        "3",
        "iid",
        "1",
        "quantum",
    )
    m = run.data.metrics
    for key in (
        "val/acc",
        "val/f1_macro",
        "train/loss",
        "client/0/val/f1_macro",
        "client/2/val/f1_macro",
        "client/val/f1_macro_min",
        "client/val/f1_macro_mean",
        "client/val/f1_macro_max",
        "comm/up_bytes",
        "comm/down_bytes",
        "comm/sync_bytes",
        "comm/total_bytes",
        "comm/round/total_bytes",
        "time/client_s",
        "time/server_s",
        "time/server_quantum_s",
        "time/comm_simulated_s",
        "params/client",
        "params/server",
        "params/quantum",
        "test/acc",
        "test/f1_macro",
        "client/1/test/f1_macro",
        "grad_norm/client",
        "grad_norm/server",
        "bp/grad_var/server/server_head",
    ):
        assert key in m, key
    assert m["comm/total_bytes"] == m["comm/up_bytes"] + m["comm/down_bytes"] + m["comm/sync_bytes"]
    assert m["time/server_quantum_s"] > 0 and m["params/quantum"] > 0
    arts = artifacts(tmp_path, run.info.run_id)
    assert {
        "comm/ledger.csv",
        "plots/f1_vs_round.png",
        "plots/f1_vs_mb.png",
        "logs/epochs.csv",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "config/config.yaml",
    } <= arts
    # the federated checkpoint is an hqexp checkpoint: eval rebuilds the model and scores it the same
    ckpt = Path(t["hqexp.output_dir"]) / "checkpoints" / "best.ckpt"
    hqexp(["eval", f"ckpt_path={ckpt}", "trainer.enable_progress_bar=false"], tmp_path)
    (ev,) = runs(tmp_path, "tags.`hqexp.command` = 'eval'")
    assert ev.data.metrics["test/f1_macro"] == pytest.approx(m["test/f1_macro"], abs=1e-6)


def test_federation_none_is_ordinary_training(tmp_path):
    from helpers import hqexp, runs

    hqexp(["train", *FED, "seed=4"], tmp_path)
    hqexp(["train", *FED, "seed=4", "federation=none"], tmp_path)
    a, b = runs(tmp_path)
    keys = [k for k in a.data.metrics if k.startswith("test/")]
    assert keys and all(a.data.metrics[k] == b.data.metrics[k] for k in keys)
    assert a.data.tags["federation"] == b.data.tags["federation"] == "none"


def test_one_client_split_learning_reaches_centralised_accuracy(tmp_path):
    from helpers import hqexp, runs

    base = [
        "model=split_conv1d",
        "dataset=breast_cancer",
        "trainer.max_epochs=12",
        "trainer.enable_progress_bar=false",
        "callbacks.early_stopping.enabled=false",
        "seed=1",
    ]
    for mode in ("none", "sl", "sflv1"):
        hqexp(["train", *base, f"federation={mode}", "federation.n_clients=1"], tmp_path)
    acc = {r.data.tags["federation"]: r.data.metrics["test/acc"] for r in runs(tmp_path)}
    assert acc["none"] > 0.85
    for mode in ("sl", "sflv1"):
        assert abs(acc[mode] - acc["none"]) <= 0.05, acc


@pytest.mark.parametrize(
    "args,message",
    [
        (["federation=sflv1", "federation.n_clients=500"], "federation.n_clients=500 is more than the"),
        (["federation=sl", "federation.cut=7"], "federation.cut=7 is outside model=split_conv1d"),
        (["federation=sl_ushaped", "federation.cut=4"], "the client keeps the last stage too"),
        (["federation=sflv1", "federation.partition=natural"], "needs a dataset with a natural client"),
        (
            [
                "federation=sflv1",
                "federation.partition=dirichlet",
                "federation.alpha=0.0001",
                "federation.n_clients=20",
            ],
            "without training samples",
        ),
        (["federation=fl", "federation.fraction=0"], "federation.fraction must be in (0, 1]"),
        (["federation=sl", "model=g1", *BASE], "cannot be split"),
        (
            ["federation=fl", "dataset=options", "model=hqnn_autoencoder", *BASE[1:]],
            "federation needs a classification",
        ),
    ],
)
def test_impossible_settings_are_one_line_and_leave_no_run_open(tmp_path, args, message):
    from helpers import error_line, hqexp, runs

    out = hqexp(["train", *(args if "model=" in " ".join(args) else [*FED, *args])], tmp_path, check=False)
    assert out.returncode == 2
    assert message in error_line(out), out.stderr[-2000:]
    assert all(r.info.status != "RUNNING" for r in runs(tmp_path))


def test_ctrl_c_mid_round_marks_killed_and_keeps_the_last_round(tmp_path):
    import os
    import signal
    import subprocess
    import time

    from helpers import HQEXP, runs

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [*HQEXP, "train", *FED, "federation=sl", "trainer.max_epochs=100000", f"hydra.run.dir={tmp_path}/run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not last.exists():
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["federation"]["round"] >= 1 and ckpt["hqexp"]["run_id"] == run.info.run_id
