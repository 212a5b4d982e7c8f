"""ECG loaders on real PhysioNet samples and on wfdb-written fixtures; the dual-path model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ecg_fixtures import make_cinc, make_ptbxl

from hqexp.data.ecg import ECGDataModule, synthetic_ecg
from hqexp.data.ecg_sources import SUPERCLASSES, read_cinc2021, read_ptbxl
from hqexp.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real PhysioNet samples) not present")


# ----------------------------------------------------------------- real records
@needs_shared
def test_real_ptbxl_record_1_is_norm_with_its_real_signal():
    import wfdb

    a = read_ptbxl(SHARED / "ptbxl-mini", 100)
    assert a.signals.shape == (1, 12, 1000)
    assert list(a.ids) == [1] and list(a.folds) == [3]
    assert a.labels[0].tolist() == [1, 0, 0, 0, 0]  # NORM only (LVOLT and SR are not diagnostic)
    sig, fields = wfdb.rdsamp(str(SHARED / "ptbxl-mini/records100/00000/00001_lr"))
    assert fields["fs"] == 100 and fields["sig_name"][0] == "I"
    np.testing.assert_allclose(a.signals[0], sig.T.astype(np.float32))


@needs_shared
def test_real_ptbxl_at_500hz_names_the_missing_file():
    with pytest.raises(DataError, match=r"records500/00000/00001_hr\.hea"):
        read_ptbxl(SHARED / "ptbxl-mini", 500)


@needs_shared
def test_real_cinc2021_records_map_resample_and_count():
    a = read_cinc2021(SHARED / "cinc2021-sample", rate=100)
    assert a.signals.shape[1:] == (12, 1000)
    assert len(a.labels) + a.dropped_unlabelled == 20
    e0 = list(a.ids).index("E07500")  # Dx 67741000119109 (left atrial enlargement), 426177001 (brady: unmapped)
    assert a.labels[e0].tolist() == [0, 0, 0, 0, 1]
    b = read_cinc2021(SHARED / "cinc2021-sample", rate=500)
    assert b.signals.shape[1:] == (12, 5000)
    # resampling keeps the waveform: the 100 Hz record is the 500 Hz one low-passed and decimated
    i = list(b.ids).index("E07500")
    assert np.corrcoef(a.signals[e0, 1, 100:900], b.signals[i, 1, 500:4500:5])[0, 1] > 0.95


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ptbxl_root(tmp_path_factory):
    return make_ptbxl(tmp_path_factory.mktemp("ptbxl"), n=60)


def test_ptbxl_fixture_all_classes_folds_and_split(ptbxl_root, tmp_path):
    a = read_ptbxl(ptbxl_root, 100)
    assert a.dropped_unlabelled == 2 and len(a.labels) == 60
    assert (a.labels.sum(0) > 0).all() and sorted(set(a.folds)) == list(range(1, 11))
    dm = ECGDataModule("ptbxl", str(ptbxl_root), cache_dir=str(tmp_path / "cache"))
    dm.setup()
    sizes = {k: len(v) for k, v in dm._splits.items()}
    assert sizes == {"train": 48, "val": 6, "test": 6}
    x = torch.stack([dm._splits["train"][i][0] for i in range(48)])
    assert x.shape == (48, 12, 1000)
    assert x.mean(dim=(0, 2)).abs().max() < 1e-4  # standardised with training statistics
    assert dm.info.class_names == SUPERCLASSES and dm.info.task == "multilabel"


def test_cache_is_reused_and_invalidated_by_a_changed_file(ptbxl_root, tmp_path):
    cache = tmp_path / "cache"
    a = read_ptbxl(ptbxl_root, 100, cache_dir=cache)
    files = sorted(cache.glob("*.npy"))
    assert len(files) == 1
    b = read_ptbxl(ptbxl_root, 100, cache_dir=cache)
    assert isinstance(b.signals, np.memmap) and np.array_equal(a.signals, b.signals)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.folds, b.folds)
    dat = ptbxl_root / "records100/00000/00005_lr.dat"
    st = dat.stat()
    os.utime(dat, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "re-downloaded" file
    read_ptbxl(ptbxl_root, 100, cache_dir=cache)
    assert len(sorted(cache.glob("*.npy"))) == 2


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_records_error_names_the_file_or_are_skipped(ptbxl_root, tmp_path):
    root = _copy(ptbxl_root, tmp_path / "bad")
    dat = root / "records100/00000/00007_lr.dat"
    dat.write_bytes(dat.read_bytes()[:5000])  # truncated download
    hea = root / "records100/00000/00011_lr.hea"
    hea.write_text(hea.read_text().replace(" 100 1000", " 250 1000", 1))  # rate disagrees
    (root / "records100/00000/00013_lr.hea").unlink()  # listed in the CSV, missing
    with pytest.raises(DataError, match="00007_lr"):
        read_ptbxl(root, 100)
    a = read_ptbxl(root, 100, on_bad_record="skip")
    assert len(a.skipped) == 3 and len(a.labels) == 57
    joined = " ".join(a.skipped)
    assert "00007_lr" in joined and "250 Hz, expected 100 Hz" in joined and "00013_lr.hea" in joined
    assert 7 not in a.ids and 11 not in a.ids and 13 not in a.ids


def test_failed_read_leaves_no_file_in_the_cache(ptbxl_root, tmp_path):
    root = _copy(ptbxl_root, tmp_path / "bad")
    dat = root / "records100/00000/00007_lr.dat"
    dat.write_bytes(dat.read_bytes()[:5000])
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="00007_lr"):  # records 1-6 were already written to the cache file
        read_ptbxl(root, 100, cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == []
    a = read_ptbxl(root, 100, on_bad_record="skip", cache_dir=cache)  # compacted, then kept
    assert len(a.labels) == 59 and len(list(cache.glob("*.npy"))) == len(list(cache.glob("*.npz"))) == 1


def test_header_with_wrong_lead_count(ptbxl_root, tmp_path):
    import wfdb

    root = _copy(ptbxl_root, tmp_path / "leads")
    rec = wfdb.rdrecord(str(root / "records100/00000/00003_lr"))
    wfdb.wrsamp(
        "00003_lr",
        fs=100,
        units=["mV"] * 11,
        sig_name=rec.sig_name[:11],
        p_signal=rec.p_signal[:, :11],
        fmt=["16"] * 11,
        adc_gain=[1000.0] * 11,
        baseline=[0] * 11,
        write_dir=str(root / "records100/00000"),
    )
    with pytest.raises(DataError, match="00003_lr.hea: 11 leads, expected 12"):
        read_ptbxl(root, 100)


def test_cinc_fixture_maps_codes_drops_unmapped_and_splits(tmp_path):
    root = make_cinc(tmp_path / "cinc", n=40)
    a = read_cinc2021(root, rate=100)
    assert len(a.labels) == 40 and a.dropped_unlabelled == 3
    assert a.signals.shape == (40, 12, 1000)
    dm = ECGDataModule("cinc2021", str(root), val_fraction=0.2, test_fraction=0.2, seed=1)
    dm.setup()
    sizes = {k: len(v) for k, v in dm._splits.items()}
    assert sum(sizes.values()) == 40 and min(sizes.values()) >= 6
    idx = np.concatenate([v.idx for v in dm._splits.values()])
    assert len(set(idx.tolist())) == 40  # no record in two splits


def test_bad_config_is_clear():
    with pytest.raises(ConfigError, match="needs dataset.root"):
        ECGDataModule("ptbxl")
    with pytest.raises(ConfigError, match="on_bad_record must be error or skip"):
        ECGDataModule("synthetic_ecg", on_bad_record="ignore")
    with pytest.raises(ConfigError, match="folds overlap"):
        ECGDataModule("ptbxl", "/x", train_folds=[1, 2], val_folds=[2])
    with pytest.raises(DataError, match="not a PTB-XL folder"):
        read_ptbxl("/nonexistent", 100)


def test_synthetic_morphology_depends_on_class():
    a = synthetic_ecg(400, seed=0)
    assert set(np.unique(a.labels.sum(1))) <= {1, 2}
    hyp, norm = a.labels[:, 4] == 1, a.labels[:, 0] == 1
    # HYP enlarges R in V5/V6: larger peak amplitude there than NORM on average
    peak = np.abs(a.signals[:, 10:12]).max(-1).mean(-1)
    assert peak[hyp].mean() > 1.3 * peak[norm].mean()


# ----------------------------------------------------------------- models
QUANTUM = dict(
    n_qubits=8, n_layers=3, template="strongly_entangling", embedding="angle_y", measurement="z_each", pair_gate="crx"
)


def test_dual_path_is_under_50k_and_logs_alpha_spikes_and_pairs():
    from hqexp.models import count_parameters
    from hqexp.models.ecg_hybrid import ECGDualPath

    m = ECGDualPath(12, 5, QUANTUM, {"name": "torch"})
    assert count_parameters(m)["total"] < 50_000 and count_parameters(m)["quantum"] == 72
    y = m(torch.randn(4, 12, 1000))
    assert y.shape == (4, 5)
    y.sum().backward()
    assert m.alpha_logit.grad is not None and m.qpath.q.weight.grad.abs().sum() > 0
    extra = m.extra_metrics()
    assert 0 < extra["fusion/alpha"] < 1 and 0 <= extra["snn/spike_rate"] <= 1
    assert "plots/pair_attention.png" in m.figures()


@pytest.mark.parametrize("bits,levels", [(1, 2), (2, 3), (8, 255)])
def test_low_bit_weights(bits, levels):
    from hqexp.models.snn import QuantConv1d

    conv = QuantConv1d(12, 4, 7, weight_bits=bits, bias=False)
    w = torch.randn(4, 12, 7) * 0.3
    conv.weight.data.copy_(w)
    from hqexp.models.snn import _QuantSTE

    q = _QuantSTE.apply(conv.weight, bits)
    for c in range(4):
        assert len(torch.unique(q[c])) <= levels
    if bits == 1:
        assert torch.allclose(q[0].abs(), w[0].abs().mean().expand_as(q[0]))
    x = torch.randn(2, 12, 50, requires_grad=True)
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0  # straight-through


def test_lif_custom_backward_matches_autograd_loop():
    from hqexp.models.snn import _LIFFn, spike

    def reference(current, beta, thr=1.0, slope=25.0):
        v, out = torch.zeros_like(current[..., 0]), []
        for t in range(current.shape[-1]):
            v = beta * v + current[..., t]
            s = spike(v - thr, slope)
            v = v - s.detach() * thr
            out.append(s)
        return torch.stack(out, -1)

    g = torch.Generator().manual_seed(0)
    cur = torch.randn(3, 4, 30, dtype=torch.float64, generator=g) * 1.5
    beta = torch.sigmoid(torch.randn(1, 4, dtype=torch.float64, generator=g))
    w = torch.randn(3, 4, 30, dtype=torch.float64, generator=g)
    c1, b1 = cur.clone().requires_grad_(), beta.clone().requires_grad_()
    c2, b2 = cur.clone().requires_grad_(), beta.clone().requires_grad_()
    s1, s2 = reference(c1, b1), _LIFFn.apply(c2, b2, 1.0, 25.0)
    assert torch.equal(s1, s2)
    (s1 * w).sum().backward()
    (s2 * w).sum().backward()
    assert torch.allclose(c1.grad, c2.grad) and torch.allclose(b1.grad, b2.grad)


def test_baselines_sizes():
    from hqexp.models import count_parameters
    from hqexp.models.ecg_hybrid import ECGCNNSmall, FCNWang

    assert count_parameters(ECGCNNSmall(12, 5))["total"] < 50_000
    assert count_parameters(FCNWang(12, 5))["total"] > 200_000
    assert ECGCNNSmall(12, 5)(torch.randn(2, 12, 1000)).shape == (2, 5)
