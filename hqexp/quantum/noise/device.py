"""Device noise from a calibration snapshot: qiskit-ibm-runtime's fake backends (offline JSON).

``noise=device noise.device=FakeManilaV2`` reads, per physical qubit, T1, T2, the readout
assignment (``prob_meas1_prep0``, ``prob_meas0_prep1``), the √X gate's error and duration, and per
coupled pair the native two-qubit gate's (cx, ecr or cz) error and duration. The logical qubits
are placed on a connected chain of the device, the best calibrated one of its length (the most
likely error-free run of a circuit: the product of one minus every error it meets) unless
``noise.qubits`` names one. On the device:

* RZ is a frame change (no error, no time); RX and RY are two √X pulses each;
* CNOT and CZ cost one native two-qubit gate, a controlled rotation two;
* a two-qubit gate between positions that are not neighbours on the chain is routed by SWAPs
  (three native two-qubit gates each) there and back, each with its noise.

A gate's depolarizing part is chosen so that, composed with its thermal relaxation, its average
infidelity is the snapshot's reported error (as ``NoiseModel.from_backend`` does; here derived
from the entanglement fidelity, :func:`~hqexp.quantum.noise.channels.depolarizing_for_error`).
Where a snapshot reports T2 > 2·T1 (not physical for this model) T2 is taken as 2·T1.
"""

from __future__ import annotations

import math
from functools import lru_cache

from hqexp.errors import ConfigError
from hqexp.quantum.noise import channels as ch
from hqexp.quantum.noise.model import NoiseModel

NATIVE_2Q = ("ecr", "cx", "cz")


def device_names() -> list[str]:
    """Every fake backend qiskit-ibm-runtime ships (class names, e.g. ``FakeManilaV2``)."""
    import qiskit_ibm_runtime.fake_provider as fp

    out = []
    for name in dir(fp):
        cls = getattr(fp, name)
        if name.startswith("Fake") and isinstance(cls, type) and "Provider" not in name:
            if hasattr(cls, "conf_filename") or hasattr(cls, "props_filename"):
                out.append(name)
    return sorted(out)


@lru_cache(maxsize=16)
def load(name: str):
    """The fake backend ``name``; one line with the choices when it does not exist."""
    try:
        import qiskit_ibm_runtime.fake_provider as fp
    except ImportError:
        raise ConfigError(
            "noise=device needs qiskit-ibm-runtime (its fake backends carry the calibration snapshots): "
            "pip install 'hqexp[aer]'"
        ) from None
    import warnings

    cls = getattr(fp, str(name), None) if name else None
    if cls is None or name not in device_names():
        raise ConfigError(f"unknown device {name!r}; choose one of: {', '.join(device_names())}")
    with warnings.catch_warnings():  # some snapshots warn that they are not typical of their device
        warnings.simplefilter("ignore")
        return cls()


def calibration(backend) -> dict:
    """Per-qubit and per-edge figures of a fake backend, as plain numbers."""
    target = backend.target
    props = backend.properties()
    n = backend.num_qubits
    two = next((g for g in NATIVE_2Q if g in target.operation_names), None)
    if two is None:
        raise ConfigError(f"device {backend.name}: no native two-qubit gate among {NATIVE_2Q}")
    qubits = []
    for q in range(n):
        qp = target.qubit_properties[q]
        t1, t2 = float(qp.t1), float(qp.t2)
        sx = target["sx"].get((q,))
        p01 = props.qubit_property(q, "prob_meas1_prep0")[0] if props else None
        p10 = props.qubit_property(q, "prob_meas0_prep1")[0] if props else None
        if p01 is None or p10 is None:
            e = float(target["measure"][(q,)].error or 0.0)
            p01 = p10 = e
        qubits.append(
            {
                "t1": t1,
                "t2": min(t2, 2 * t1),
                "t2_clipped": t2 > 2 * t1,
                "sx_error": float(sx.error or 0.0) if sx else 0.0,
                "sx_s": float(sx.duration or 0.0) if sx else 0.0,
                "p01": float(p01),
                "p10": float(p10),
            }
        )
    edges: dict[tuple[int, int], dict] = {}
    for (a, b), pr in target[two].items():
        if pr is None:
            continue
        key = (min(a, b), max(a, b))
        e, d = float(pr.error or 0.0), float(pr.duration or 0.0)
        if key not in edges or e < edges[key]["error"]:  # the better direction of the pair
            edges[key] = {"error": e, "s": d}
    date = props.last_update_date if props else None
    return {
        "name": backend.name,
        "qubits": qubits,
        "edges": edges,
        "two": two,
        "date": date.isoformat() if hasattr(date, "isoformat") else str(date),
    }


def _score(cal: dict, chain: list[int]) -> float:
    """log P(no error) of a chain: its qubits' readout and two √X, its links' two-qubit gate."""
    s = 0.0
    for q in chain:
        c = cal["qubits"][q]
        s += math.log(max(1e-12, 1 - (c["p01"] + c["p10"]) / 2)) + 2 * math.log(max(1e-12, 1 - c["sx_error"]))
    for a, b in zip(chain, chain[1:]):
        s += math.log(max(1e-12, 1 - cal["edges"][(min(a, b), max(a, b))]["error"]))
    return s


def best_chain(cal: dict, n: int, beam: int = 512) -> list[int]:
    """The best-scoring connected chain of ``n`` physical qubits (beam search over simple paths)."""
    nq = len(cal["qubits"])
    adj: dict[int, list[int]] = {q: [] for q in range(nq)}
    for a, b in cal["edges"]:
        adj[a].append(b)
        adj[b].append(a)
    paths = [[q] for q in range(nq)]
    for _ in range(n - 1):
        grown = [p + [nb] for p in paths for nb in adj[p[-1]] if nb not in p]
        if not grown:
            raise ConfigError(f"device {cal['name']} has no connected chain of {n} qubits")
        grown.sort(key=lambda p: _score(cal, p), reverse=True)
        paths = grown[:beam]
    return max(paths, key=lambda p: _score(cal, p))


def device_model(name: str | None, n: int, qubits: list[int] | None = None) -> NoiseModel:
    """The :class:`NoiseModel` of ``n`` positions on device ``name``'s chosen chain."""
    backend = load(name)
    cal = calibration(backend)
    total = len(cal["qubits"])
    if n > total:
        raise ConfigError(f"a circuit of {n} qubits is wider than device {name} ({total} qubits)")
    if qubits is not None:
        chain = [int(q) for q in qubits]
        if len(chain) != n or len(set(chain)) != n or not all(0 <= q < total for q in chain):
            raise ConfigError(
                f"noise.qubits must be {n} distinct physical qubits of {name} (0..{total - 1}), got {qubits}"
            )
        for a, b in zip(chain, chain[1:]):
            if (min(a, b), max(a, b)) not in cal["edges"]:
                raise ConfigError(f"noise.qubits {chain}: qubits {a} and {b} are not coupled on {name}")
    else:
        chain = best_chain(cal, n)
    qs = [cal["qubits"][q] for q in chain]
    p1, p2, g2 = [], [], []
    for c in qs:
        relax = ch.thermal_kraus(c["t1"], c["t2"], c["sx_s"]) if c["sx_s"] > 0 else None
        fe = ch.entanglement_fidelity(relax) if relax else 1.0
        p1.append(ch.depolarizing_for_error(c["sx_error"], fe, 1))
    for i in range(n - 1):
        a, b = chain[i], chain[i + 1]
        e = cal["edges"][(min(a, b), max(a, b))]
        fe = 1.0
        for c in (qs[i], qs[i + 1]):
            if e["s"] > 0:
                fe *= ch.entanglement_fidelity(ch.thermal_kraus(c["t1"], c["t2"], e["s"]))
        p2.append(((i, i + 1), ch.depolarizing_for_error(e["error"], fe, 2)))
        g2.append(((i, i + 1), e["s"]))
    return NoiseModel(
        "device",
        n,
        p1=tuple(p1),
        p2=tuple(p2),
        t1=tuple(c["t1"] for c in qs),
        t2=tuple(c["t2"] for c in qs),
        gate_1q_s=tuple(c["sx_s"] for c in qs),
        gate_2q_s=tuple(g2),
        readout_err=tuple((c["p01"], c["p10"]) for c in qs),
        virtual_rz=True,
        pulses_per_rotation=2,
        coupled=tuple((i, i + 1) for i in range(n - 1)),
        device=str(name),
        layout=tuple(chain),
        calibration_date=cal["date"],
    )
