"""Format-faithful fixtures of WESAD, PAMAP2, MIMIC-III waveforms and TON_IoT.

No real WESAD or PAMAP2 file exists on these machines; these writers follow the published
formats byte for byte (WESAD: a Python-2 protocol-2 pickle — ``numpy.core.multiarray``
globals, 8-bit strings that need ``encoding='latin1'``; PAMAP2: 54 whitespace-separated
columns with ``NaN``). MIMIC records are written with wfdb (segments, ``_layout``, master and
numerics headers as in the Matched Subset); TON_IoT CSVs with the real quirks (BOM, padded
times, ``-``). The signals carry class-dependent structure so that a model can learn them.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------ WESAD


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote: 8-bit strings (SHORT_BINSTRING / BINSTRING)
    and numpy's ``numpy.core.multiarray`` globals."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[str] = save_py2str
    dispatch[bytes] = save_py2str

    def save_global(self, obj, name=None):
        module, name = getattr(obj, "__module__", None), name or obj.__qualname__
        if module and module.startswith("numpy._core"):
            module = "numpy.core" + module[len("numpy._core") :]
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            module, name = "numpy", "dtype"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


# label sequence of a session (seconds): transient, baseline, transient, stress, transient,
# amusement, meditation, then the "not to be used" labels
WESAD_SCRIPT = [(0, 10), (1, 60), (0, 5), (2, 40), (0, 5), (3, 30), (4, 20), (6, 5), (7, 5)]


def wesad_subject(k: int, seed: int = 0, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(seed + k)
    labels = np.concatenate([np.full(int(s * 700 * scale), lab, np.int32) for lab, s in WESAD_SCRIPT])
    n = len(labels)
    t = np.arange(n) / 700
    stress = (labels == 2).astype(float)
    amuse = (labels == 3).astype(float)
    hr = 1.1 + 0.5 * stress + 0.15 * amuse  # beats per second
    ecg = np.sin(2 * np.pi * np.cumsum(hr) / 700) ** 15 + 0.05 * rng.standard_normal(n)
    resp = np.sin(2 * np.pi * (0.25 + 0.15 * stress) * t) + 0.1 * rng.standard_normal(n)
    eda = 2 + 3 * stress + 0.5 * amuse + 0.05 * rng.standard_normal(n)
    temp = 33 - 0.6 * stress + 0.02 * rng.standard_normal(n)
    chest = {
        "ACC": rng.normal(0, 0.05, (n, 3)) + [0.9, 0.0, -0.3],
        "ECG": ecg[:, None],
        "EMG": rng.normal(0, 0.01, (n, 1)),
        "EDA": eda[:, None],
        "Temp": temp[:, None],
        "Resp": resp[:, None],
    }
    n32, n64, n4 = int(n / 700 * 32), int(n / 700 * 64), int(n / 700 * 4)
    wrist = {
        "ACC": rng.normal(0, 3, (n32, 3)) + [30, 5, 50],
        "BVP": rng.normal(0, 20, (n64, 1)),
        "EDA": (0.5 + 2 * stress[::175][:n4])[:, None],
        "TEMP": (32 - 0.4 * stress[::175][:n4])[:, None],
    }
    return {"signal": {"chest": chest, "wrist": wrist}, "label": labels, "subject": f"S{k}"}


def make_wesad(root: Path, subjects=(2, 3, 4, 5), scale: float = 1.0) -> Path:
    root = Path(root)
    for k in subjects:
        d = root / f"S{k}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"S{k}.pkl").write_bytes(py2_pickle(wesad_subject(k, scale=scale)))
    return root


# ------------------------------------------------------------------ PAMAP2
# every protocol activity for 15 s, transient (0) between
PAMAP2_SCRIPT = [step for a in (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24) for step in ((0, 2), (a, 15))] + [(0, 2)]


def pamap2_rows(subject: int, seed: int = 0, script=PAMAP2_SCRIPT) -> np.ndarray:
    rng = np.random.default_rng(seed + subject)
    acts = np.concatenate([np.full(s * 100, a) for a, s in script])
    n = len(acts)
    t = np.arange(n) / 100
    out = np.full((n, 54), np.nan)
    out[:, 0] = 5.64 + t
    out[:, 1] = acts
    hr_every = 11  # ~9 Hz heart rate, NaN between readings
    out[::hr_every, 2] = 80 + 30 * np.isin(acts[::hr_every], (4, 5)) + 10 * (acts[::hr_every] == 6)
    codes = (0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)
    freq = {a: 0.1 + 0.25 * i for i, a in enumerate(codes)}
    amp = {a: 0.2 + 0.5 * (i % 5) for i, a in enumerate(codes)}
    f = np.vectorize(freq.get)(acts)
    a = np.vectorize(amp.get)(acts)
    for base in (3, 20, 37):
        out[:, base] = 32 + rng.normal(0, 0.1, n)  # temperature
        for j in range(6):  # acc16, acc6
            out[:, base + 1 + j] = 9.81 * (j % 3 == 0) + a * np.sin(2 * np.pi * f * t + j) + rng.normal(0, 0.2, n)
        for j in range(6):  # gyro, magnetometer
            out[:, base + 7 + j] = 0.3 * a * np.cos(2 * np.pi * f * t + j) + rng.normal(0, 0.05, n)
        out[:, base + 13] = 1.0
        out[:, base + 14 : base + 17] = 0.0  # orientation: invalid in this collection
    drop = rng.choice(n, n // 200, replace=False)  # wireless drop-outs: single missing samples
    out[drop, 4:7] = np.nan
    out[300:380, 38:44] = np.nan  # one long drop-out of the ankle IMU (0.8 s, while lying)
    return out


def write_pamap2_file(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        text = np.char.mod("%.6g", rows).astype(object)
        text[np.isnan(rows)] = "NaN"
        text[:, 1] = rows[:, 1].astype(int).astype(str)
        fh.write("\n".join(" ".join(r) for r in text) + "\n")


def make_pamap2(root: Path, subjects=(101, 102, 103)) -> Path:
    root = Path(root)
    for s in subjects:
        write_pamap2_file(root / "Protocol" / f"subject{s}.dat", pamap2_rows(s))
    return root


# ------------------------------------------------------------------ MIMIC-III waveforms
def _segment(folder: Path, name: str, fs: int, sigs: dict[str, np.ndarray], base_time: str) -> None:
    import wfdb

    names = list(sigs)
    units = ["mmHg" if s == "ABP" else ("NU" if s == "PLETH" else "mV") for s in names]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=units,
        sig_name=names,
        p_signal=np.stack([sigs[s] for s in names], 1),
        fmt=["80"] * len(names),
        write_dir=str(folder),
        base_time=None,
    )
    hea = folder / f"{name}.hea"
    lines = hea.read_text().splitlines()
    lines[0] = f"{lines[0]} {base_time}"
    hea.write_text("\n".join(lines) + "\n")


def make_mimic(
    root: Path, patients=("p000101", "p000102"), minutes: float = 6.0, fs: int = 125, signals=("II", "PLETH", "ABP")
) -> Path:
    """Matched-Subset-style records: root/p00/<patient>/<patient>-2150-01-01-00-00 (master, 3
    segments with a gap and a 4-sample segment, a layout header, and a numerics record)."""
    import wfdb

    for pi, pid in enumerate(patients):
        folder = Path(root) / "p00" / pid
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(pi)
        base = 3000000 + pi
        master = f"{pid}-2150-01-0{pi + 1}-00-00"
        n = int(minutes * 60 * fs)
        t = np.arange(n) / fs
        # MAP wanders between ~55 and ~85 mmHg: hypotensive and normotensive stretches
        mean_ap = 70 + 15 * np.sin(2 * np.pi * t / (minutes * 30) + pi)
        beat = np.sin(2 * np.pi * 1.2 * t)
        data = {
            "II": beat**9 + 0.05 * rng.standard_normal(n),
            "PLETH": 50 + (mean_ap - 70) * 0.8 + 10 * np.maximum(beat, 0) + rng.normal(0, 1, n),
            "ABP": mean_ap + 20 * beat + rng.normal(0, 1, n),
            "V": beat**7,
        }
        sigs = [s for s in signals]
        a, gap, b = n // 2, fs * 20, n // 2 - fs * 20 - 4
        _segment(folder, f"{base}_0001", fs, {s: data[s][:a] for s in sigs}, "00:00:00.000")
        _segment(
            folder,
            f"{base}_0002",
            fs,
            {s: data[s][a + gap : a + gap + 4] for s in sigs},
            f"00:{(a + gap) // fs // 60:02d}:{(a + gap) // fs % 60:02d}.000",
        )
        _segment(
            folder,
            f"{base}_0003",
            fs,
            {s: data[s][a + gap + 4 : a + gap + 4 + b] for s in sigs},
            f"00:{(a + gap + 4) // fs // 60:02d}:{(a + gap + 4) // fs % 60:02d}.032",
        )
        layout = (
            "\n".join(
                [f"{base}_layout {len(sigs)} {fs} 0 00:00:00.000"]
                + [f"~ 0 100/{'mmHg' if s == 'ABP' else 'mV'} 8 0 0 0 0 {s}" for s in sigs]
            )
            + "\n"
        )
        (folder / f"{base}_layout.hea").write_text(layout)
        segs = [(f"{base}_layout", 0), (f"{base}_0001", a), ("~", gap), (f"{base}_0002", 4), (f"{base}_0003", b)]
        total = sum(length for _, length in segs)
        (folder / f"{master}.hea").write_text(
            f"{master}/{len(segs)} {len(sigs)} {fs} {total} 00:00:00.000 01/0{pi + 1}/2150\n"
            + "".join(f"{s} {length}\n" for s, length in segs)
            + "# <age>: ?? <sex>: ?\n"
        )
        # numerics: one row a minute, NBPMean (a cuff) with one missing reading
        rows = int(minutes)
        nbp = np.array([mean_ap[int(i * 60 * fs)] for i in range(rows)])
        nbp[1] = np.nan
        num = np.stack([np.full(rows, 80.0), nbp], 1)
        wfdb.wrsamp(
            f"{master}n",
            fs=1 / 60,
            units=["bpm", "mmHg"],
            sig_name=["HR", "NBPMean"],
            p_signal=num,
            fmt=["16", "16"],
            adc_gain=[10, 1],
            baseline=[0, 0],
            write_dir=str(folder),
        )
        hea = folder / f"{master}n.hea"
        hea.write_text(hea.read_text().replace(f"{master}n.dat", f"{base}n.dat"))
        (folder / f"{master}n.dat").rename(folder / f"{base}n.dat")
    return Path(root)


# ------------------------------------------------------------------ TON_IoT
TON_DEVICES = {
    "Fridge": (["fridge_temperature", "temp_condition"], False),
    "Thermostat": (["current_temperature", "thermostat_status"], True),
    "GPS_Tracker": (["latitude", "longitude"], True),
}
TON_TYPES = ("normal", "backdoor", "ddos", "injection", "password", "ransomware", "scanning", "xss")


def make_ton_iot(root: Path, rows_per_type: int = 40, seed: int = 0) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for dev, (cols, bom) in TON_DEVICES.items():
        lines = [",".join(["ts", "date", "time", *cols, "label", "type"])]
        types = [t for t in TON_TYPES for _ in range(rows_per_type * (3 if t == "normal" else 1))]
        rng.shuffle(types)
        ts = 1556245660
        for i, typ in enumerate(types):
            ts += int(rng.integers(10, 90))
            k = TON_TYPES.index(typ)
            a = round(float(rng.normal(5 + 2 * k, 1.0)), 4)
            b = (
                ["low", "high"][k % 2]
                if dev == "Fridge"
                else str(int(k % 3 == 0))
                if dev == "Thermostat"
                else f"{rng.normal(100 + 5 * k, 2):.7f}"
            )
            if i % 17 == 0:
                b = "-"  # absent value
            tm = f" {(ts // 3600) % 24:2d}:{(ts // 60) % 60:02d}:{ts % 60:02d} "  # padded like the real files
            lines.append(f"{ts},25-Apr-19,{tm},{a},{b},{int(typ != 'normal')},{typ}")
        text = "\n".join(lines) + "\n"
        (root / f"Train_Test_IoT_{dev}.csv").write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return root


NETWORK_COLUMNS = (
    "src_ip,src_port,dst_ip,dst_port,proto,service,duration,src_bytes,dst_bytes,conn_state,missed_bytes,src_pkts,"
    "src_ip_bytes,dst_pkts,dst_ip_bytes,dns_query,dns_qclass,dns_qtype,dns_rcode,dns_AA,dns_RD,dns_RA,dns_rejected,"
    "ssl_version,ssl_cipher,ssl_resumed,ssl_established,ssl_subject,ssl_issuer,http_trans_depth,http_method,http_uri,"
    "http_version,http_request_body_len,http_response_body_len,http_status_code,http_user_agent,"
    "http_orig_mime_types,http_resp_mime_types,weird_name,weird_addl,weird_notice,label,type"
).split(",")


def make_ton_network(root: Path, rows: int = 300, seed: int = 0) -> Path:
    """``Train_Test_Network.csv`` with the 44 published columns (mixed-case header, ``-`` for absent)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    types = ("normal", "scanning", "ddos", "xss")
    lines = [",".join(c.upper() if c.startswith("dns_") else c for c in NETWORK_COLUMNS)]
    for i in range(rows):
        typ = types[i % len(types)]
        k = types.index(typ)
        src = f"192.168.1.{10 + i % 5}"
        row = {c: "-" for c in NETWORK_COLUMNS}
        row.update(
            {
                "src_ip": src,
                "src_port": str(40000 + i),
                "dst_ip": "10.0.0.1",
                "dst_port": "80",
                "proto": ["tcp", "udp"][k % 2],
                "service": ["http", "dns", "-"][k % 3],
                "duration": f"{rng.exponential(0.5 + k):.6f}",
                "src_bytes": str(int(rng.integers(0, 500) * (k + 1))),
                "dst_bytes": str(int(rng.integers(0, 900))),
                "conn_state": ["SF", "S0", "REJ", "OTH"][k],
                "missed_bytes": "0",
                "src_pkts": str(1 + k),
                "src_ip_bytes": str(60 * (1 + k)),
                "dst_pkts": "1",
                "dst_ip_bytes": "40",
                "dns_qclass": "0",
                "dns_qtype": "0",
                "dns_rcode": "0",
                "dns_AA": "F",
                "dns_RD": "F",
                "dns_RA": "F",
                "dns_rejected": "F",
                "ssl_resumed": "F",
                "ssl_established": "F",
                "http_trans_depth": "-",
                "http_request_body_len": "0",
                "http_response_body_len": "0",
                "http_status_code": "0",
                "weird_notice": "F",
                "label": str(int(typ != "normal")),
                "type": typ,
            }
        )
        lines.append(",".join(row[c] for c in NETWORK_COLUMNS))
    (root / "Train_Test_Network.csv").write_text("\n".join(lines) + "\n")
    return root
