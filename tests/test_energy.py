"""Energy meters: counter logic on recorded sequences, RAPL on a sysfs-shaped tree, real NVML on GPU."""

from __future__ import annotations

import pathlib
import time

import pytest
import torch

from hqexp.energy import Counter, CounterMeter, Unavailable, nvml_meter, rapl_meter, select_meter


def _replay(values):
    it = iter(values)
    return lambda: next(it)


def _clock(step: float = 0.5):
    t = [0.0]

    def clock():
        t[0] += step
        return t[0]

    return clock


def test_counter_meter_sums_counters_over_the_window():
    meter = CounterMeter(
        "test",
        [Counter("a", _replay([10.0, 12.0, 15.0])), Counter("b", _replay([100.0, 101.0, 101.5]))],
        clock=_clock(1.0),
    )
    meter.start()
    meter.poll()
    r = meter.elapsed()
    assert r.joules == pytest.approx(5.0 + 1.5)
    assert r.seconds == pytest.approx(1.0)  # clock read at start() and at elapsed()


def test_counter_wrap_around_is_unwrapped():
    wrap = 262_143.328850  # a real RAPL max_energy_range_uj, in joules
    seq = [wrap - 10.0, wrap - 5.0, 3.0, 8.0]
    meter = CounterMeter("rapl", [Counter("pkg", _replay(seq), wrap)], clock=_clock(1.0))
    meter.start()
    meter.poll()
    meter.poll()
    assert meter.elapsed().joules == pytest.approx(5.0 + 8.0 + 5.0)


def test_counter_going_backwards_without_wrap_range_is_an_error():
    meter = CounterMeter("nvml", [Counter("gpu0", _replay([50.0, 40.0]))], clock=_clock())
    meter.start()
    with pytest.raises(RuntimeError, match="went backwards"):
        meter.poll()


def test_short_window_is_not_reported():
    meter = CounterMeter("nvml", [Counter("gpu0", _replay([1.0, 1.2, 3.0]))], clock=_clock(0.6))
    meter.start()
    assert meter.elapsed() is None  # 0.6 s < 1 s: too short for the counter's update rate
    assert meter.elapsed().joules == pytest.approx(2.0)


def _fake_rapl(root: pathlib.Path, packages: dict[str, int], wrap: int = 262143328850) -> None:
    for name, uj in packages.items():
        d = root / name
        d.mkdir(parents=True)
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text(f"{wrap}\n")
        (d / "name").write_text("package-0\n")
    sub = root / "intel-rapl:0:0"  # the core sub-domain: already inside package 0
    sub.mkdir()
    (sub / "energy_uj").write_text("999999999\n")


def test_rapl_reads_package_domains_only_and_unwraps(tmp_path):
    _fake_rapl(tmp_path, {"intel-rapl:0": 262143328850 - 1_000_000, "intel-rapl:1": 5_000_000})
    meter = rapl_meter(tmp_path)
    assert meter.source == "rapl" and [c.name for c in meter.counters] == ["intel-rapl:0", "intel-rapl:1"]
    meter.min_window_s = 0.0
    meter.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: +1 J +2 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("5500000\n")  # +0.5 J
    assert meter.elapsed().joules == pytest.approx(3.5)


def test_rapl_missing_interface_and_permission(tmp_path, monkeypatch):
    assert rapl_meter(tmp_path / "absent").source == "unavailable:no-rapl-interface"
    assert rapl_meter(tmp_path).source == "unavailable:no-rapl-package-domain"
    _fake_rapl(tmp_path, {"intel-rapl:0": 1})
    real = pathlib.Path.read_text

    def denied(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    # Tests may run as root, for whom chmod does not deny: deny the read itself.
    monkeypatch.setattr(pathlib.Path, "read_text", denied)
    m = rapl_meter(tmp_path)
    assert isinstance(m, Unavailable) and m.source.startswith("unavailable:rapl-permission-denied")


def test_select_meter_without_a_gpu_says_why():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert select_meter("cuda", "auto").source == "unavailable:no-cuda-gpu"
    assert select_meter("cpu", "none").source == "unavailable:disabled"
    with pytest.raises(ValueError, match="auto, nvml, rapl or none"):
        select_meter("cpu", "watts")


def test_nvml_without_driver_is_unavailable_not_an_error():
    m = nvml_meter(0)
    if m.available:
        pytest.skip("NVML works here; see the gpu test")
    assert m.source.startswith("unavailable:")


@pytest.mark.gpu
def test_nvml_measures_a_gpu_workload():
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA")
    meter = select_meter("cuda:0")
    assert meter.source == "nvml", meter
    a = torch.randn(4096, 4096, device="cuda")
    meter.start()
    t = time.perf_counter()
    while time.perf_counter() - t < 1.5:
        a = (a @ a).tanh_()
    r = meter.elapsed()
    assert r is not None and r.seconds >= 1.5
    assert 10.0 < r.joules / r.seconds < 2000.0  # a busy GPU draws tens to hundreds of watts
