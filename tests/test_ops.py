"""Operations per classification and their named energy estimate: counts of small hand-checkable
layers equal their closed forms, spiking accumulates follow the spike rate, the estimate never
takes a measured metric's name, and every run logs it — on a CPU without a meter too."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY, error_line, hqexp_here, runs
from torch import nn

from hqexp.energy.ops import OpCounter, OpEnergy, dense_macs, uncountable, weight_bytes

H45 = OpEnergy("h45", "Horowitz 2014", {"fp32": 4.6e-12, "int8": 0.23e-12}, {"fp32": 0.9e-12, "int8": 0.03e-12})


def _count(model: nn.Module, x: torch.Tensor):
    c = OpCounter(model)
    with torch.no_grad():
        model(x)
    c.close()
    return c.per_sample(x.shape[0])


def test_a_linear_and_a_conv_count_their_closed_forms():
    got = _count(nn.Linear(5, 3), torch.randn(4, 5))
    assert got.macs == {"fp32": 15.0} and not got.acs
    conv = nn.Conv1d(2, 4, kernel_size=3, padding=1)
    got = _count(conv, torch.randn(6, 2, 10))
    assert got.macs["fp32"] == 4 * 10 * 2 * 3  # out elements × in channels × kernel
    grouped = nn.Conv2d(4, 8, kernel_size=(3, 2), groups=2)
    x = torch.randn(2, 4, 5, 5)
    y = grouped(x)
    assert dense_macs(grouped, x, y) == y.numel() * 2 * 6
    assert H45.joules(_count(nn.Linear(5, 3), torch.randn(4, 5))) == pytest.approx(15 * 4.6e-12)


def test_spikes_in_are_accumulates_at_the_spike_rate():
    lin = nn.Linear(10, 7)
    spikes = torch.zeros(8, 10)
    spikes[:, :3] = 1.0  # 3 of 10 inputs fire in every sample
    got = _count(lin, spikes)
    assert not got.macs and got.acs["fp32"] == pytest.approx(3 * 7)  # non-zero inputs × fan-out
    spikes[:, :6] = 1.0
    assert _count(lin, spikes).acs["fp32"] == pytest.approx(6 * 7)  # twice the rate, twice the work
    assert H45.joules(_count(lin, spikes)) == pytest.approx(42 * 0.9e-12)


def test_a_lif_layer_feeding_a_conv_counts_its_spikes():
    from hqexp.models.snn import LIF

    net = nn.Sequential(LIF(3), nn.Conv1d(3, 5, kernel_size=1))
    current = torch.zeros(2, 3, 20)
    current[:, 0, ::2] = 10.0  # channel 0 fires every other step, the others never (well above threshold)
    got = _count(net, current)
    s = net[0](current)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert got.acs["fp32"] == pytest.approx(float(s.sum()) / 2 * 5)  # spikes per sample × fan-out
    assert not got.macs


def test_binary_weights_add_and_their_memory_is_one_bit():
    from hqexp.models.snn import QuantConv1d

    conv = QuantConv1d(2, 4, 3, padding=1, bias=False, weight_bits=1)
    got = _count(conv, torch.randn(3, 2, 10))
    assert got.acs["fp32"] == 4 * 10 * 2 * 3 and not got.macs
    assert weight_bytes(conv) == conv.weight.numel() / 8
    assert weight_bytes(nn.Linear(5, 3)) == (15 + 3) * 4


def test_a_quantum_layer_counts_gates_and_circuits_not_joules():
    from hqexp.quantum import QuantumLayer

    q = QuantumLayer({"n_qubits": 3, "n_layers": 2, "template": "strongly_entangling"}, backend="torch")
    gates = list(q.ansatz.gates())
    one = sum(len(g.wires) == 1 for g in gates)
    got = _count(q, torch.rand(5, 3))
    assert got.circuits == 1 and got.gates_1q == one and got.gates_2q == len(gates) - one
    assert got.measurements == 3
    assert H45.joules(got) == 0.0  # the quantum part is never priced in joules
    assert set(got.metrics()) >= {"ops/quantum/circuits", "ops/quantum/gates_2q"}


def test_a_lora_adapter_counts_its_products_and_uncountable_layers_are_named():
    from hqexp.models.generations import LoRALinear

    lora = LoRALinear(nn.Linear(6, 4), rank=2, alpha=1.0)
    assert _count(lora, torch.randn(3, 6)).macs["fp32"] == 6 * 4 + 2 * (6 + 4)
    assert uncountable(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))) is None
    assert uncountable(nn.Sequential(nn.Linear(3, 3), nn.LSTM(3, 3))) == "1 (LSTM)"


def test_the_estimate_never_takes_a_measured_name_and_a_cpu_run_logs_it(tmp_path):
    hqexp_here(["train", "model=snn_vqc_ecg", "dataset=synthetic_ecg", "dataset.n_synthetic=60", *TINY], tmp_path)
    (run,) = runs(tmp_path)
    m, tags = run.data.metrics, run.data.tags
    assert m["ops/macs"] > 0 and m["ops/acs"] > 0 and m["ops/quantum/circuits"] == 1.0
    assert m["energy_est/j_per_inference"] == pytest.approx(m["ops/macs"] * 4.6e-12 + m["ops/acs"] * 0.9e-12)
    assert m["ops/weight_bytes"] > 0
    assert tags["energy_est_source"] == "ops:horowitz45nm" and "memory traffic" in tags["energy_est.note"]
    assert "energy_source" in tags  # the meter's own tag, untouched (unavailable:… on a CPU without RAPL)
    measured = {"energy/joules", "energy/j_per_sample", "energy/watts", "energy/j_per_inference", "energy/test_watts"}
    assert {k for k in m if k.startswith("energy/")} <= measured  # only a meter writes energy/*
    if tags["energy_source"].startswith("unavailable"):
        assert not any(k.startswith("energy/") for k in m)


def test_a_bad_energy_profile_is_one_line(tmp_path):
    out = hqexp_here(["train", "dataset=iris", *TINY, "ops_energy.mac_j.fp32=-1"], tmp_path, check=False)
    assert out.returncode == 2 and "ops_energy=horowitz45nm: mac_j needs a non-negative" in error_line(out)
    out = hqexp_here(["train", "dataset=iris", *TINY, "+ops_energy.mac_j.fp16=1e-12"], tmp_path, check=False)
    assert out.returncode == 2 and "mac_j widths are fp32, int8, not fp16" in error_line(out)
    out = hqexp_here(["train", "dataset=iris", *TINY, "ops_energy=nope"], tmp_path, check=False)
    assert out.returncode != 0 and "horowitz45nm" in out.stderr


def test_measured_inference_energy_is_the_test_windows_joules_per_classification():
    from types import SimpleNamespace

    from hqexp.callbacks.energy import EnergyCallback
    from hqexp.energy import Counter, CounterMeter

    joules = iter([100.0, 103.0, 106.0, 109.0, 112.0])  # 3 J between reads
    t = iter(range(100))
    meter = CounterMeter("fake", [Counter("pkg", lambda: next(joules))], clock=lambda: float(next(t)))
    cb = EnergyCallback(meter, poll_every_n_batches=1)
    logged = {}
    module = SimpleNamespace(log_dict=lambda d, **kw: logged.update(d))
    trainer = SimpleNamespace(world_size=1)
    cb.on_test_epoch_start(trainer, module)
    for i in range(3):
        cb.on_test_batch_end(trainer, module, None, (torch.zeros(4, 2), torch.zeros(4)), i)
    cb.on_test_epoch_end(trainer, module)
    # start read 100, polls at 103, 106, 109, the window's end 112: 12 J over 12 classifications
    assert logged["energy/j_per_inference"] == pytest.approx(12.0 / 12)
    assert "energy_est/j_per_inference" not in logged


@pytest.mark.parametrize("model", ["ecg_cnn_small", "fcn_wang"])
def test_dense_counts_agree_with_torchs_flop_counter(model):
    """On models without spikes, our MACs are torch.utils.flop_counter's FLOPs / 2 (it counts the
    same convolutions and matrix products; spikes and bit widths are what it cannot see)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from torch.utils.flop_counter import FlopCounterMode

    from hqexp.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", "dataset=synthetic_ecg"])
    GlobalHydra.instance().clear()
    net = instantiate(cfg.model, n_features=12, n_classes=5, _convert_="all").eval()
    x = torch.randn(2, 12, 1000)
    ours = _count(net, x).macs["fp32"]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(x)
    assert ours == pytest.approx(fc.get_total_flops() / 2 / 2, rel=1e-9)  # per sample, FLOPs = 2 MACs
