"""Privacy and robustness: dCor against an independent implementation and closed forms, the
defences, the inversion and label-leak attacks, FGSM / PGD, refusals, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hqexp.errors import ConfigError
from hqexp.federated import PROTOCOLS, Channel, Ledger, Setup
from hqexp.models.split import SplitConv1D
from hqexp.privacy import check
from hqexp.privacy.attacks import adversarial, fgsm, pgd
from hqexp.privacy.dcor import dcor
from hqexp.privacy.defences import ClientDefence
from hqexp.privacy.inversion import decoder_attack, scores, whitebox_attack
from hqexp.privacy.measures import label_leak_auc

Q = {
    "n_qubits": 3,
    "n_layers": 1,
    "template": "strongly_entangling",
    "embedding": "angle_x",
    "measurement": "z_each",
    "entangler": "cnot",
}


# ------------------------------------------------------------------ dCor
def test_dcor_closed_forms():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g)
    assert dcor(x, 3 * x + 2).item() == pytest.approx(1.0, abs=1e-9)  # Z = aX + b
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    assert dcor(x, x @ q).item() == pytest.approx(1.0, abs=1e-9)  # a rotation keeps every distance
    assert dcor(x, torch.randn(400, 3, generator=g)).item() < 0.2  # independent: V-statistic bias only
    assert dcor(x[:, :1], x[:, :1] ** 2).item() > 0.3  # nonlinear dependence is seen (Pearson r ≈ 0)


def test_dcor_matches_the_dcor_package():
    dc = pytest.importorskip("dcor", reason="the dcor package (pip install 'hqexp[privacy]') is the reference")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    z = np.tanh(x @ rng.normal(size=(4, 3))) + 0.3 * rng.normal(size=(200, 3))
    ours = dcor(torch.from_numpy(x), torch.from_numpy(z)).item()
    assert ours == pytest.approx(dc.distance_correlation(x, z), abs=1e-9)


# ------------------------------------------------------------------ defences
def _split_run(defence, rounds=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 10, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = SplitConv1D(10, 2, quantum=Q, backend={"name": "torch"}, channels=[4, 8], server_head="classical")
    ledger = Ledger()
    ch = Channel(ledger)
    sent = []
    ch.tap(lambda kind, t, k, d: sent.append(t) if kind == "activations" else None)
    opt = lambda p, role: torch.optim.AdamW(p, lr=1e-2)  # noqa: E731
    s = Setup(model, 2, [48, 48], ch, nn.CrossEntropyLoss(), opt, 2, defence=defence, batch_size=16, epochs=rounds)
    proto = PROTOCOLS["sflv1"](s)
    loaders = {k: DataLoader(TensorDataset(x[i::2], y[i::2]), batch_size=16) for k, i in ((0, 0), (1, 1))}
    for r in range(rounds):
        ch.round = r + 1
        proto.train_round([0, 1], loaders, 1)
    with torch.no_grad():
        z = proto.parts.client(x)
    return dcor(x, z).item(), sent, proto, x, z


def test_nopeek_lowers_dcor_and_noise_is_added_to_what_is_sent():
    plain, _, _, _, _ = _split_run(None)
    nopeek, _, _, _, _ = _split_run(ClientDefence(nopeek_weight=1.0))
    assert nopeek < plain - 0.05, (plain, nopeek)
    _, sent, proto, x, _ = _split_run(ClientDefence(noise_std=0.5), rounds=1)
    with torch.no_grad():
        clean = proto.clients[0].module(x[0::2][:16])  # what client 0 computed for its first batch …
    assert sent[0].shape == clean.shape  # … is not what it sent: the noise went over the wire
    assert 0.3 < (sent[-1] - proto.clients[1].module(x[1::2][-16:]).detach()).std().item() < 0.7


def test_dp_sgd_spends_epsilon_and_more_noise_spends_less():
    pytest.importorskip("opacus", reason="DP-SGD needs Opacus (pip install 'hqexp[privacy]')")
    eps = []
    for sigma in (0.8, 2.0):
        d = ClientDefence(
            dp={"enabled": True, "noise_multiplier": sigma, "max_grad_norm": 1.0, "target_epsilon": None, "delta": 1e-5}
        )
        _split_run(d, rounds=2)
        eps.append(d.epsilon())
    assert 0 < eps[1] < eps[0]


# ------------------------------------------------------------------ attacks on the smashed data
def test_inversion_recovers_what_an_invertible_cut_keeps_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    lin = nn.Linear(6, 8)
    with torch.no_grad():
        z = torch.tanh(lin(x))
    good = decoder_attack(x[:200], z[:200], x[200:], z[200:], epochs=150)
    assert good["corr"] > 0.9 and good["mse"] < 0.2
    noise = decoder_attack(
        x[:200], torch.randn(200, 8, generator=g), x[200:], torch.randn(100, 8, generator=g), epochs=50
    )
    assert noise["corr"] < 0.3
    white = whitebox_attack(lin, x[200:], lin(x[200:]).detach(), steps=400)
    assert white["corr"] > 0.99
    assert scores(torch.ones(2, 1, 4), torch.ones(2, 1, 4))["prd"] == 0.0


def test_norm_attack_reads_labels_from_gradient_norms():
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    y = (torch.rand(200) < 0.2).long()  # imbalanced, as in Li et al.
    front, server, head = nn.Linear(4, 6), nn.Sequential(nn.Tanh(), nn.Linear(6, 6)), nn.Linear(6, 2)
    with torch.no_grad():  # a model that has learned the prior: the majority class is likely
        head.bias.copy_(torch.tensor([2.0, -2.0]))
    auc = label_leak_auc(front, server, head, nn.CrossEntropyLoss(), x, y)
    assert auc > 0.95  # the minority's larger loss shows in the norm of the gradient the server receives


# ------------------------------------------------------------------ adversarial inputs
def test_fgsm_and_pgd():
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    loss = nn.CrossEntropyLoss()
    assert torch.equal(fgsm(model, loss, x, y, 0.0), x) and torch.equal(pgd(model, loss, x, y, 0.0), x)
    acc = lambda a: (model(a).argmax(1) == y).float().mean().item()  # noqa: E731
    clean, f, p = acc(x), acc(fgsm(model, loss, x, y, 0.3)), acc(pgd(model, loss, x, y, 0.3, steps=20))
    assert clean > 0.95 and f < clean and p <= f + 1e-9  # PGD hurts at least as much as FGSM
    adv = pgd(model, loss, x, y, 0.3, steps=20)
    assert (adv - x).abs().max().item() <= 0.3 + 1e-6  # inside the eps ball
    logits, ys = adversarial(model, loss, DataLoader(TensorDataset(x, y), batch_size=64), "fgsm", 0.3)
    assert logits.shape == (256, 2) and torch.equal(ys, y)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "priv,attack,mode,task,n,match",
    [
        ({}, {"name": "fgsm", "eps": 0.1, "steps": 1}, "none", "regression", 1, "regression task"),
        ({"nopeek_weight": 0.1}, {"name": "none"}, "none", "classification", 2, "federation=none there is no cut"),
        ({"noise_std": 0.5}, {"name": "none"}, "fl", "classification", 2, "no activations cross"),
        ({"label_leak": True}, {"name": "none"}, "sl_ushaped", "classification", 3, "needs a binary task"),
        ({"label_leak": True}, {"name": "none"}, "sflv1", "classification", 2, "labels_disclosed=true"),
    ],
)
def test_privacy_refusals_are_one_line(priv, attack, mode, task, n, match):
    with pytest.raises(ConfigError, match=match):
        check({"label_leak": "auto", **priv}, attack, mode, task, n, "x")


# ------------------------------------------------------------------ the CLI
BASE = [
    "model=split_conv1d",
    "model.channels=[4,8]",
    "model.quantum.n_qubits=2",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "privacy.inversion_epochs=20",
    "privacy.whitebox_steps=20",
]


def test_split_runs_record_privacy_and_robustness(tmp_path):
    from helpers import hqexp, runs

    hqexp(["train", *BASE, "federation=sflv1", "privacy=nopeek_0.1", "attack=pgd", "attack.steps=3"], tmp_path)
    hqexp(["train", *BASE, "federation=sl_ushaped", "privacy=noise_0.5"], tmp_path)
    by = {r.data.tags["federation"]: r for r in runs(tmp_path)}
    m = by["sflv1"].data.metrics
    for key in (
        "privacy/dcor",
        "privacy/inversion_mse",
        "privacy/inversion_corr",
        "privacy/whitebox_mse",
        "adv/test/acc",
        "adv/test/f1_macro",
    ):
        assert key in m, key
    assert by["sflv1"].data.tags["labels_disclosed"] == "true" and "privacy/label_leak_auc" not in m
    u = by["sl_ushaped"].data.metrics
    assert by["sl_ushaped"].data.tags["labels_disclosed"] == "false" and 0.5 <= u["privacy/label_leak_auc"] <= 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["dataset=options", "model=hqnn_autoencoder", "attack=fgsm"], "regression task"),
        (["model=split_conv1d", "privacy=nopeek_1"], "federation=none there is no cut"),
        (
            ["model=split_conv1d", "dataset=wine", "federation=sl_ushaped", "privacy.label_leak=true"],
            "needs a binary task",
        ),
    ],
)
def test_privacy_bad_input_on_the_cli(tmp_path, args, message):
    from helpers import hqexp

    out = hqexp(["train", *args, "trainer.max_epochs=1"], tmp_path, check=False)
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1] and "Traceback" not in out.stderr
