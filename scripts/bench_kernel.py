"""The IQP kernel's Gram matrix three ways, in one process: hqexp's simulator (one state per input,
then |Ψ Ψ'†|²), PennyLane default.qubit preparing the same states (broadcast), and PennyLane running
one circuit per pair as the benchmark paper's code does (U(x), then U†(x'); P(0…0)) — timed on a
``--pairs`` × ``--pairs`` block and reported per entry, since the full matrix that way takes minutes.

    python scripts/bench_kernel.py --dims 2 4 6 8 10 --repeats 1 --pairs 20

Prints a Markdown table; every figure is a measured wall time on this machine (best of ``--runs``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best_of(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def row(d: int, repeats: int, pairs: int, runs: int) -> str:
    """One table row: dimension ``d`` of linearly_separable, its 240 training inputs."""
    import pennylane as qml

    from hqexp.data.qml_benchmark import generate
    from hqexp.models.kernel_methods import pennylane_iqp_states
    from hqexp.quantum import kernels as qk

    X = generate("linearly_separable", d)[0]
    X = (X - X.min(0)) / (X.max(0) - X.min(0)) * np.pi - np.pi / 2  # the model's min-max scaling
    ours = best_of(lambda: qk.fidelity_gram(*(2 * [qk.iqp_states(X, repeats)])), runs)
    pl = best_of(lambda: qk.fidelity_gram(*(2 * [pennylane_iqp_states(X, repeats)])), runs)
    dev = qml.device("default.qubit", wires=d)

    @qml.qnode(dev)
    def pair(x1, x2):
        qml.IQPEmbedding(x1, wires=range(d), n_repeats=repeats)
        qml.adjoint(qml.IQPEmbedding(x2, wires=range(d), n_repeats=repeats))
        return qml.probs()

    block = X[:pairs]
    per = best_of(lambda: [pair(a, b) for a in block for b in block], 1) / len(block) ** 2
    cells = [
        d,
        len(X),
        f"{ours:.4f}",
        f"{pl:.4f}",
        f"{pl / ours:.1f}x",
        f"{1000 * per:.2f}",
        f"{per * len(X) ** 2:.0f}",
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        "| d | N train | hqexp torch (s) | PennyLane states (s) | ratio | PennyLane per pair (ms/entry) "
        "| per pair, N² entries (s, extrapolated) |"
    )
    print("|---|---|---|---|---|---|---|")
    for d in args.dims:
        print(row(d, args.repeats, args.pairs, args.runs))


if __name__ == "__main__":
    main()
