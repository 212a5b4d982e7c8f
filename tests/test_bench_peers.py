"""The outside simulators `hqexp bench backends` times beside ours: each builds the benchmark's
circuit and agrees with the torch simulator before any timing counts (the `bench` extra)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from helpers import hqexp

from hqexp.bench import peers
from hqexp.quantum import Ansatz, expval


def _inputs(n: int, layers: int, batch: int):
    a = Ansatz(n, layers, embedding="angle_x", template="strongly_entangling", measurement="z_each")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(batch, n, generator=g, dtype=torch.float64) * math.pi
    w = torch.rand(a.weight_shape, generator=g, dtype=torch.float64) * 2 * math.pi
    return a, x, w


@pytest.mark.parametrize("name", peers.PEERS)
@pytest.mark.parametrize("n,layers", [(3, 2), (5, 3)])
def test_each_peer_computes_our_values_and_gradients(name, n, layers):
    if peers.missing(name):
        pytest.skip(peers.missing(name))
    a, x, w = _inputs(n, layers, 4)
    xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
    want = expval(a, xx, ww, "torch", dtype="complex128")
    want.sum().backward()
    peer = peers.build(name, n, layers, x.numpy().astype(np.float32), w.numpy().astype(np.float32))
    values, dx, dw = peer.fwd_bwd(*peer.native(x.numpy().astype(np.float32), w.numpy().astype(np.float32)))
    np.testing.assert_allclose(np.asarray(values, dtype=np.float64), want.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(dx, dtype=np.float64), xx.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(dw, dtype=np.float64), ww.grad.numpy(), atol=1e-4)
    assert peer.compile_s >= 0


def test_missing_and_unknown_peers_are_said_so(tmp_path):
    assert "unknown peer" in peers.missing("nope")
    qulacs_here = importlib.util.find_spec("qulacs") is not None
    assert (peers.missing("qulacs") is None) == qulacs_here
    assert peers.missing("qulacs") is None or "pip install 'hqexp[bench]'" in peers.missing("qulacs")
    out = hqexp(["bench", "backends", "peers=[nope]", "grid=[[3,1,4]]"], tmp_path, check=False)
    assert out.returncode == 2 and "unknown peer 'nope'" in out.stderr


EXACT = [p for p in peers.PEERS if p not in peers.NOISY_PEERS]


def test_bench_times_peers_only_after_they_agree(tmp_path):
    csv = tmp_path / "b.csv"
    hqexp(
        [
            "bench",
            "backends",
            "grid=[[3,1,4]]",
            "repeats=1",
            "warmup=1",
            "backends=[torch]",
            f"peers=[{','.join(EXACT)}]",
            f"csv={csv}",
        ],
        tmp_path,
        timeout=600,
    )
    import pandas as pd

    df = pd.read_csv(csv).set_index("backend")
    for name in EXACT:
        status = df.loc[name, "status"]
        if peers.missing(name):
            assert status.startswith("unavailable: not installed")
        else:
            assert status.startswith("ok (agrees to") and df.loc[name, "fwd_bwd_ms"] > 0
            assert df.loc[name, "ratio_fwd_bwd"] == pytest.approx(
                df.loc[name, "fwd_bwd_ms"] / df.loc["torch", "fwd_bwd_ms"]
            )
