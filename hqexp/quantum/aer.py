"""Qiskit Aer backend: the canonical gate list run on ``AerSimulator``.

Exact by default (saved probabilities of the statevector); ``shots=N`` samples.
Gradients use the parameter-shift rule: every input and weight drives exactly one
Pauli rotation, so ``(f(θ+π/2) − f(θ−π/2))/2`` is the exact derivative.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hqexp.errors import BackendUnavailable
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.backends import Backend, _need_module


class AerBackend(Backend):
    name = "aer"

    def __init__(self, shots: int | None = None, seed: int | None = None) -> None:
        if shots is not None and (not isinstance(shots, int) or shots < 1):
            raise BackendUnavailable(f"backend 'aer': shots must be a positive int or null, got {shots!r}")
        self.shots, self.seed = shots, seed
        self.exact = shots is None
        self._circuits: dict = {}
        self._sim = None

    def check_available(self) -> None:
        _need_module("aer", "qiskit", "pip install 'hqexp[aer]' (qiskit, qiskit-aer)")
        _need_module("aer", "qiskit_aer", "pip install 'hqexp[aer]' (qiskit, qiskit-aer)")

    def _circuit(self, ansatz: Ansatz):
        hit = self._circuits.get(ansatz)
        if hit is not None:
            return hit
        from qiskit import QuantumCircuit, transpile
        from qiskit.circuit import ParameterVector
        from qiskit_aer import AerSimulator

        n = ansatz.n_qubits
        params = ParameterVector("p", n + ansatz.n_weights)
        qc = QuantumCircuit(n)
        # Wire i -> qiskit qubit n-1-i makes Qiskit's little-endian basis index equal
        # PennyLane's big-endian one, so probabilities line up without reordering.
        qb = lambda w: n - 1 - w  # noqa: E731
        method = {"CNOT": "cx", "CZ": "cz", "RX": "rx", "RY": "ry", "RZ": "rz"}
        for g in ansatz.gates():
            if g.param is None:
                getattr(qc, method[g.name])(*[qb(w) for w in g.wires])
                continue
            kind, ref = g.param
            angle = params[int(ref)] if kind == "x" else params[n + int(ref)] if kind == "w" else float(ref)
            getattr(qc, method[g.name])(angle, qb(g.wires[0]))
        if self.shots is None:
            qc.save_probabilities()
        else:
            qc.measure_all()
        if self._sim is None:
            self._sim = AerSimulator(method="statevector", seed_simulator=self.seed)
        tqc = transpile(qc, self._sim, optimization_level=0)
        self._circuits[ansatz] = (tqc, list(params))
        return self._circuits[ansatz]

    def probabilities(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        """Basis probabilities ``[M, 2**n]`` for ``M`` parameter vectors ``[M, n + n_w]``."""
        tqc, params = self._circuit(ansatz)
        binds = [{p: values[:, j].tolist() for j, p in enumerate(params)}]
        result = self._sim.run(tqc, parameter_binds=binds, shots=self.shots).result()
        dim = 2**ansatz.n_qubits
        out = np.zeros((values.shape[0], dim))
        for i in range(values.shape[0]):
            if self.shots is None:
                out[i] = np.asarray(result.data(i)["probabilities"])
            else:
                for key, count in result.get_counts(i).items():
                    out[i, int(key.replace(" ", ""), 2)] = count / self.shots
        return out

    def expvals(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        from hqexp.quantum.statevector import measure_probs

        probs = torch.from_numpy(self.probabilities(ansatz, values))
        return measure_probs(ansatz, probs).numpy()

    def run(self, ansatz, inputs, weights):
        return _AerFunction.apply(inputs, weights, self, ansatz)


def _values(inputs: torch.Tensor, weights: torch.Tensor, ansatz: Ansatz) -> np.ndarray:
    x = inputs.detach().to(torch.float64).cpu().numpy()
    w = weights.detach().to(torch.float64).cpu().numpy()
    w = np.broadcast_to(w.reshape(-1, ansatz.n_weights), (x.shape[0], ansatz.n_weights))
    return np.concatenate([x, w], axis=1)


class _AerFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, weights, backend: AerBackend, ansatz: Ansatz):  # type: ignore[override]
        values = _values(inputs, weights, ansatz)
        ctx.backend, ctx.ansatz, ctx.values = backend, ansatz, values
        ctx.weight_shape = weights.shape
        out = backend.expvals(ansatz, values)
        return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        values, ansatz, backend = ctx.values, ctx.ansatz, ctx.backend
        B, P = values.shape
        shift = math.pi / 2
        eye = np.eye(P)[None] * shift  # [1, P, P]
        plus = (values[:, None, :] + eye).reshape(-1, P)
        minus = (values[:, None, :] - eye).reshape(-1, P)
        f = backend.expvals(ansatz, np.concatenate([plus, minus]))
        jac = (f[: B * P] - f[B * P:]).reshape(B, P, -1) / 2  # [B, P, n_out]
        g = torch.as_tensor(np.einsum("bpo,bo->bp", jac, grad_out.detach().double().cpu().numpy()))
        g = g.to(dtype=grad_out.dtype, device=grad_out.device)
        n = ansatz.n_qubits
        grad_x = g[:, :n] if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            gw = g[:, n:]
            grad_w = gw.reshape(ctx.weight_shape) if len(ctx.weight_shape) > len(ansatz.weight_shape) \
                else gw.sum(0).reshape(ctx.weight_shape)
        return grad_x, grad_w, None, None
