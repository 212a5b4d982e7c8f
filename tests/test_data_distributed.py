"""WESAD, PAMAP2, MIMIC-III waveforms and TON_IoT: loaders on the real samples in
../shared/data (skipped with a reason when absent) and on format-faithful fixtures —
windows, labels, groups, splits, caches, and one clear line for every bad input."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest
from conftest import SHARED_DATA
from fixtures_distributed import (
    make_mimic,
    make_pamap2,
    make_ton_iot,
    make_ton_network,
    make_wesad,
    pamap2_rows,
    py2_pickle,
    wesad_subject,
    write_pamap2_file,
)

from hqexp.data.mimic import MIMIC3WDBDataModule
from hqexp.data.pamap2 import PAMAP2DataModule
from hqexp.data.ton_iot import TONIoTDataModule
from hqexp.data.wesad import WESADDataModule
from hqexp.errors import ConfigError, DataError
from hqexp.federated import partition

MIMIC_SAMPLE = SHARED_DATA / "mimic3wdb-sample"
TON_SAMPLE = SHARED_DATA / "ton-iot-sample"
needs_mimic = pytest.mark.skipif(not MIMIC_SAMPLE.is_dir(), reason=f"real MIMIC sample not found at {MIMIC_SAMPLE}")
needs_ton = pytest.mark.skipif(not TON_SAMPLE.is_dir(), reason=f"real TON_IoT sample not found at {TON_SAMPLE}")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixtures")
    return {
        "wesad": make_wesad(root / "wesad", subjects=(2, 3, 4), scale=0.6),
        "pamap2": make_pamap2(root / "pamap2"),
        "mimic": make_mimic(root / "mimic"),
        "ton": make_ton_iot(root / "ton"),
        "net": make_ton_network(root / "net"),
    }


def _natural(dm):
    return partition("natural", None, {s: dm.targets(s) for s in ("train", "val", "test")}, dm.info.groups)


# ------------------------------------------------------------------ WESAD
def test_wesad_windows_labels_groups_and_scaler(fx):
    dm = WESADDataModule(root=str(fx["wesad"]), task="three_class")
    dm.setup()
    a = dm.arrays
    assert a.X.shape[1:] == (4, 350) and set(np.unique(a.y)) == {0, 1, 2}  # every class
    assert a.dropped["mixed_label"] > 0 and a.dropped["not_in_task"] > 0  # transient, meditation, 5-7
    p = _natural(dm)
    assert sorted(p.names) == ["S2", "S3", "S4"]  # one client per subject
    x = np.stack([dm.dataset("train")[i][0].numpy() for i in range(len(dm.dataset("train")))])
    assert np.allclose(x.mean((0, 2)), 0, atol=1e-4)  # scaled with training statistics
    binary = WESADDataModule(root=str(fx["wesad"]), task="binary", signals=["chest.ACC", "wrist.BVP", "wrist.EDA"])
    binary.setup()
    assert binary.info.n_features == 5 and binary.info.class_names == ("non_stress", "stress")


def test_wesad_pickle_safety_and_bad_files(tmp_path, fx):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    root = tmp_path / "w"
    for k, payload in (
        (2, py2_pickle(wesad_subject(2, scale=0.6))),
        (3, pickle.dumps(Evil(), protocol=2)),
        (4, py2_pickle(wesad_subject(4, scale=0.3))[:5000]),
        (5, py2_pickle([1, 2, 3])),
    ):
        (root / f"S{k}").mkdir(parents=True)
        (root / f"S{k}" / f"S{k}.pkl").write_bytes(payload)
    with pytest.raises(DataError, match=r"S3\.pkl: not a readable WESAD pickle .*refusing to load posix\.system"):
        WESADDataModule(root=str(root), subjects=["S3"]).setup()
    with pytest.raises(DataError, match=r"S4\.pkl: not a readable WESAD pickle"):  # truncated
        WESADDataModule(root=str(root), subjects=["S4"]).setup()
    with pytest.raises(DataError, match=r"S5\.pkl: not a WESAD subject file"):
        WESADDataModule(root=str(root), subjects=["S5"]).setup()
    dm = WESADDataModule(root=str(root), on_bad_record="skip", split="stratified")
    dm.setup()
    assert dm.n_skipped == 3 and set(dm.arrays.groups) == {"S2"}


def test_wesad_bad_input_is_one_clear_line(tmp_path, fx):
    with pytest.raises(DataError, match="expects root/S2/S2.pkl … root/S17/S17.pkl"):
        WESADDataModule(root=str(tmp_path / "nope")).setup()
    with pytest.raises(ConfigError, match="unknown WESAD signal 'chest.BVP'; chest has: chest.ACC, chest.ECG"):
        WESADDataModule(root=str(fx["wesad"]), signals=["chest.BVP"])
    with pytest.raises(DataError, match="shorter than dataset.window_s=1000"):
        WESADDataModule(root=str(fx["wesad"]), window_s=1000, stride_s=10).setup()
    no_wrist = tmp_path / "nw" / "S2"
    no_wrist.mkdir(parents=True)
    data = wesad_subject(2, scale=0.3)
    del data["signal"]["wrist"]["BVP"]
    (no_wrist / "S2.pkl").write_bytes(py2_pickle(data))
    with pytest.raises(DataError, match="signal wrist.BVP is missing"):
        WESADDataModule(root=str(no_wrist.parent), signals=["wrist.BVP"]).setup()


def test_window_cache_second_pass_is_the_same_and_faster(tmp_path, fx):
    kw = dict(root=str(fx["wesad"]), cache_dir=str(tmp_path / "cache"))
    t0 = time.perf_counter()
    a = WESADDataModule(**kw)
    a.setup()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = WESADDataModule(**kw)
    b.setup()
    second = time.perf_counter() - t0
    assert np.array_equal(np.asarray(a.arrays.X), np.asarray(b.arrays.X)) and np.array_equal(a.arrays.y, b.arrays.y)
    assert isinstance(b.arrays.X, np.memmap) and second < first


# ------------------------------------------------------------------ PAMAP2
def test_pamap2_windows_every_protocol_activity(fx):
    dm = PAMAP2DataModule(root=str(fx["pamap2"]))
    dm.setup()
    a = dm.arrays
    assert a.X.shape[1:] == (19, 512) and len(a.class_names) == 12 and set(np.unique(a.y)) == set(range(12))
    assert not np.isnan(np.asarray(a.X)).any()  # short gaps interpolated, heart rate filled
    assert a.dropped["long_gap"] == 3  # the 0.8 s ankle drop-out of each subject
    assert sorted(_natural(dm).names) == ["101", "102", "103"]
    sub = PAMAP2DataModule(root=str(fx["pamap2"]), activities=[1, 4, 5], signals=["ankle.gyro", "heart_rate"])
    sub.setup()
    assert sub.info.class_names == ("lying", "walking", "running") and sub.info.n_features == 4


def test_pamap2_bad_files(tmp_path):
    root = tmp_path / "p"
    write_pamap2_file(root / "Protocol" / "subject101.dat", pamap2_rows(101))
    bad = root / "Protocol" / "subject102.dat"
    lines = (root / "Protocol" / "subject101.dat").read_text().splitlines()
    bad.write_text("\n".join(lines[:10] + [" ".join(lines[10].split()[:53])] + lines[11:20]) + "\n")
    (root / "Protocol" / "subject103.dat").write_text("")
    with pytest.raises(DataError, match=r"subject102.dat: line 11 has 53 columns, expected 54"):
        PAMAP2DataModule(root=str(root)).setup()
    dm = PAMAP2DataModule(root=str(root), on_bad_record="skip", activities=[1, 4, 5, 6])
    dm.setup()
    assert dm.n_skipped == 2 and any("empty file" in s for s in dm.arrays.skipped)
    with pytest.raises(DataError, match="expected Protocol/subject101.dat"):
        PAMAP2DataModule(root=str(tmp_path)).setup()
    with pytest.raises(ConfigError, match="unknown PAMAP2 signal 'wrist.acc16'; choose from: heart_rate"):
        PAMAP2DataModule(root=str(root), signals=["wrist.acc16"])
    with pytest.raises(ConfigError, match="unknown PAMAP2 activity ID"):
        PAMAP2DataModule(root=str(root), activities=[99])


# ------------------------------------------------------------------ MIMIC-III waveforms
@pytest.mark.parametrize("source", ["abp", "numerics"])
def test_mimic_fixture_hypotension_both_label_sources(fx, source):
    dm = MIMIC3WDBDataModule(root=str(fx["mimic"]), label_source=source)
    dm.setup()
    a = dm.arrays
    assert a.X.shape[1:] == (2, 3750) and set(np.unique(a.y)) == {0, 1}
    assert a.dropped["input_missing"] > 0  # the 20 s gap between segments
    assert sorted(_natural(dm).names) == ["p000101", "p000102"]  # one client per patient


def test_mimic_refusals_and_skips(tmp_path, fx):
    with pytest.raises(ConfigError, match="ABP is the label source"):
        MIMIC3WDBDataModule(root=str(fx["mimic"]), signals=["II", "ABP"])
    dm = MIMIC3WDBDataModule(root=str(fx["mimic"]), signals=["II", "RESP"])  # RESP: nowhere
    with pytest.raises(DataError, match="no sample survived .*2 records_missing_signal"):
        dm.setup()
    assert any("missing signal(s) RESP (the record has II, PLETH, ABP)" in s for s in dm.arrays.skipped)
    with pytest.raises(DataError, match="shorter than dataset.window_s=3600"):
        MIMIC3WDBDataModule(root=str(fx["mimic"]), window_s=3600, stride_s=60).setup()
    with pytest.raises(DataError, match="MIMIC-III waveforms are expected as root/p00/p000020"):
        MIMIC3WDBDataModule(root=str(tmp_path / "none")).setup()
    gaps = tmp_path / "gaps" / "p00" / "p000301"  # a record with nothing but a gap after its layout
    gaps.mkdir(parents=True)
    (gaps / "3000301_layout.hea").write_text(
        "3000301_layout 3 125 0 00:00:00.000\n" + "".join(f"~ 0 100/mV 8 0 0 0 0 {s}\n" for s in ("II", "PLETH", "ABP"))
    )
    (gaps / "p000301-2150-01-01-00-00.hea").write_text(
        "p000301-2150-01-01-00-00/2 3 125 30000 00:00:00.000 01/01/2150\n3000301_layout 0\n~ 30000\n"
    )
    with pytest.raises(DataError, match=r"no sample survived \(0 file\(s\) skipped; dropped: 13 input_missing\)"):
        MIMIC3WDBDataModule(root=str(tmp_path / "gaps")).setup()


@needs_mimic
def test_mimic_real_sample_says_how_much_abp_is_implausible():
    dm = MIMIC3WDBDataModule(root=str(MIMIC_SAMPLE), signals=["II", "V"])
    with pytest.raises(DataError, match=r"no sample survived .*implausible_map"):
        dm.setup()  # the record's ABP is mostly absent or out of range: no silent training on it
    num = MIMIC3WDBDataModule(root=str(MIMIC_SAMPLE), signals=["II", "V"], label_source="numerics")
    num.setup()
    assert set(np.unique(num.arrays.y)) == {0, 1} and set(num.arrays.groups) == {"s25047"}
    assert num.arrays.dropped["no_map_reading"] > 0  # minutes without an NBPMean reading


# ------------------------------------------------------------------ TON_IoT
def test_ton_iot_fixture_rows_devices_and_vocabulary(fx):
    dm = TONIoTDataModule(root=str(fx["ton"]))
    dm.setup()
    a = dm.arrays
    assert a.class_names == ("normal", "backdoor", "ddos", "injection", "password", "ransomware", "scanning", "xss")
    assert set(np.unique(a.y)) == set(range(8)) and a.X.ndim == 2
    assert sorted(_natural(dm).names) == ["Fridge", "GPS_Tracker", "Thermostat"]
    assert "fridge.temp_condition=low" in a.channel_names and "device=Fridge" in a.channel_names
    assert not any(c.endswith((".ts", ".date", ".time")) for c in a.channel_names)  # identifiers dropped
    binary = TONIoTDataModule(root=str(fx["ton"]), task="binary", split="time", devices=["Fridge"])
    binary.setup()
    assert binary.info.class_names == ("normal", "attack") and set(binary.arrays.groups) == {"Fridge"}


def test_ton_iot_network_flows_by_source_host(fx):
    dm = TONIoTDataModule(root=str(fx["net"]), source="network")
    dm.setup()
    assert len(_natural(dm).names) == 5  # five source hosts
    assert not {"src_ip", "src_port", "dst_ip", "dst_port"} & {c.split("=")[0] for c in dm.arrays.channel_names}
    assert "src_ip_bytes" in dm.arrays.channel_names
    assert any(c.startswith("conn_state=") for c in dm.arrays.channel_names)


def test_ton_iot_bad_input(tmp_path, fx):
    with pytest.raises(DataError, match="expected Train_Test_IoT_Fridge.csv, Train_Test_IoT_Garage_Door.csv"):
        TONIoTDataModule(root=str(tmp_path)).setup()
    (tmp_path / "Train_Test_IoT_Fridge.csv").write_text("ts,date,time,fridge_temperature,label\n1,a,b,2,0\n")
    with pytest.raises(DataError, match=r"no type column \(it has: ts, date, time, fridge_temperature, label\)"):
        TONIoTDataModule(root=str(tmp_path)).setup()
    (tmp_path / "Train_Test_IoT_Fridge.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        TONIoTDataModule(root=str(tmp_path)).setup()


def test_a_class_absent_from_training_is_one_line():
    from hqexp.data.windows import GroupedDataModule, WindowArrays

    class Held(GroupedDataModule):  # class 2 only in group C; leave-groups-out may hold C out
        name = "toy"

        def load(self):
            g = np.array(["A"] * 6 + ["B"] * 6 + ["C"] * 6)
            y = np.array([0, 1] * 9)
            y[12:] = 2
            return WindowArrays(np.zeros((18, 3), np.float32), y, g, np.arange(18.0), ("a", "b", "c"), ())

    seed = next(s for s in range(50) if np.random.default_rng(s).permutation(["A", "B", "C"])[2] != "C")
    with pytest.raises(DataError, match=r"toy: class\(es\) c absent from the training split"):
        Held(split="group", seed=seed).setup()


@needs_ton
def test_ton_iot_real_sample_rows():
    dm = TONIoTDataModule(root=str(TON_SAMPLE))
    dm.setup()
    a = dm.arrays
    assert len(a.y) == 2160 + 2320 + 2061 and set(a.groups) == {"Fridge", "GPS_Tracker", "Thermostat"}
    assert a.class_names == ("normal", "backdoor", "ddos", "injection", "password", "ransomware", "scanning", "xss")
    assert np.isfinite(np.asarray(a.X)).all()


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize(
    "name,extra",
    [
        ("wesad", ["experiment=wesad_conv1d"]),
        ("pamap2", ["experiment=pamap2_conv1d"]),
        ("mimic", ["experiment=mimic3wdb_conv1d"]),
        ("ton", ["experiment=ton_iot_mlp"]),
    ],
)
def test_each_dataset_trains_its_baseline_end_to_end(tmp_path, fx, name, extra):
    from helpers import hqexp, runs

    hqexp(
        [
            "train",
            *extra,
            f"dataset.root={fx[name]}",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            f"dataset.cache_dir={tmp_path}/cache",
        ],
        tmp_path,
    )
    (run,) = runs(tmp_path)
    assert run.info.status == "FINISHED" and "test/f1_macro" in run.data.metrics
    assert run.data.metrics["data/skipped"] == 0


def test_natural_partition_sees_one_client_per_subject_end_to_end(tmp_path, fx):
    from helpers import hqexp, runs

    hqexp(
        [
            "train",
            "dataset=wesad",
            f"dataset.root={fx['wesad']}",
            "model=split_conv1d",
            "federation=sflv1",
            "federation.partition=natural",
            "federation.n_clients=null",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "dataset.cache_dir=null",
        ],
        tmp_path,
    )
    (run,) = runs(tmp_path)
    assert run.data.tags["n_clients"] == "3" and run.data.tags["partition"] == "natural"
    assert {"client/0/test/f1_macro", "client/2/test/f1_macro"} <= set(run.data.metrics)


def test_dataset_bad_input_is_one_line_on_the_cli(tmp_path):
    from helpers import hqexp

    out = hqexp(
        ["train", "dataset=pamap2", f"dataset.root={tmp_path}/nope", "model=conv1d_baseline"], tmp_path, check=False
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "expects root/Protocol/subject101.dat" in out.stderr.strip().splitlines()[-1]
