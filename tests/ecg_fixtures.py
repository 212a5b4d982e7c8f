"""Write PTB-XL- and CinC-2021-layout fixtures with ``wfdb`` (real formats, generated signals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from hqexp.data.ecg import synthetic_ecg
from hqexp.data.ecg_sources import SUPERCLASSES

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
# One diagnostic statement per superclass (real PTB-XL codes) and a non-diagnostic rhythm.
CODE_OF = {"NORM": "NORM", "MI": "IMI", "STTC": "NDT", "CD": "CLBBB", "HYP": "LVH"}
SCP = pd.DataFrame(
    {
        "description": [
            "normal ECG",
            "inferior myocardial infarction",
            "non-diagnostic T abnormalities",
            "complete left bundle branch block",
            "left ventricular hypertrophy",
            "sinus rhythm",
        ],
        "diagnostic": [1.0, 1.0, 1.0, 1.0, 1.0, np.nan],
        "rhythm": [np.nan] * 5 + [1.0],
        "diagnostic_class": ["NORM", "MI", "STTC", "CD", "HYP", np.nan],
    },
    index=["NORM", "IMI", "NDT", "CLBBB", "LVH", "SR"],
)


def _write(folder: Path, name: str, sig: np.ndarray, fs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * 12,
        sig_name=LEADS,
        p_signal=sig.T.astype(np.float64),
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
    )


def make_ptbxl(root: Path, n: int = 60, rates=(100,), unlabelled: int = 2) -> Path:
    """A PTB-XL folder with ``n`` labelled records over all folds and classes (+ unlabelled ones)."""
    arr = synthetic_ecg(n + unlabelled, rate=100, seed=3)
    rows = []
    for i in range(n + unlabelled):
        ecg_id = i + 1
        labels = [c for c, on in zip(SUPERCLASSES, arr.labels[i]) if on]
        codes = {CODE_OF[c]: 100.0 for c in labels} if i < n else {}
        codes["SR"] = 0.0
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        for rate in rates:
            sig = arr.signals[i] if rate == 100 else np.repeat(arr.signals[i], rate // 100, axis=1)
            tag = "lr" if rate == 100 else "hr"
            _write(root / f"records{rate}" / sub, f"{ecg_id:05d}_{tag}", sig, rate)
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": 1000 + i,
                "scp_codes": str(codes),
                "strat_fold": i % 10 + 1,
                "filename_lr": f"records100/{sub}/{ecg_id:05d}_lr",
                "filename_hr": f"records500/{sub}/{ecg_id:05d}_hr",
            }
        )
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    SCP.to_csv(root / "scp_statements.csv")
    return root


SNOMED_OF = {"NORM": "426783006", "MI": "164865005", "STTC": "164934002", "CD": "59118001", "HYP": "164873001"}


def make_cinc(root: Path, n: int = 40, fs: int = 500, unmapped: int = 3) -> Path:
    """CinC-2021-style ``.hea`` + ``.mat`` records (via ``wfdb.wfdb_to_mat``) with Dx comments."""
    arr = synthetic_ecg(n + unmapped, rate=100, seed=4)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n + unmapped):
        name = f"Q{i:04d}"
        sig = np.repeat(arr.signals[i], fs // 100, axis=1)
        dx = [SNOMED_OF[c] for c, on in zip(SUPERCLASSES, arr.labels[i]) if on] if i < n else ["164889003"]
        tmp = root / "_dat"
        _write(tmp, name, sig, fs)
        cwd = Path.cwd()
        try:
            import os

            os.chdir(root)
            from wfdb.io.convert.matlab import wfdb_to_mat

            wfdb_to_mat(str(tmp / name))
        finally:
            os.chdir(cwd)
        # wfdb_to_mat writes <name>m.hea/.mat; give it the CinC name and the Dx comments
        head = (root / f"{name}m.hea").read_text().replace(f"{name}m", name)
        head += f"# Age: 60\n# Sex: Male\n# Dx: {','.join(dx)}\n# Rx: Unknown\n"
        (root / f"{name}.hea").write_text(head)
        (root / f"{name}m.mat").rename(root / f"{name}.mat")
        (root / f"{name}m.hea").unlink()
    for f in (root / "_dat").iterdir():
        f.unlink()
    (root / "_dat").rmdir()
    return root
