"""``aer``: Qiskit Aer, the canonical gate list run on ``AerSimulator``.

Exact by default (saved probabilities of the statevector); ``shots=N`` samples. With ``noise``
the circuit as the device runs it (routing included) goes to Aer's density-matrix method with
the same noise built from Qiskit's own error constructors
(:mod:`hqexp.quantum.noise.qiskit_model`). Aer applies a readout error to sampled counts only:
exact probabilities get the same assignment matrices afterwards.
Gradients use parameter-shift rules *per gate occurrence* (each parametrised gate
gets its own circuit parameter; an input angle reused in several layers sums its
occurrences): the two-term rule ``(f(θ+π/2) − f(θ−π/2))/2`` for Pauli rotations and
the four-term rule for controlled rotations, whose generator has eigenvalues
{0, ±1/2} (Anselmetti et al. 2021, eq. 32).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.backends.base import Backend, check_grad, need_module
from hqexp.quantum.memory import require_memory
from hqexp.quantum.sampling import check_shots


class AerBackend(Backend):
    name = "aer"

    def __init__(self, shots: int | None = None, seed: int | None = None, grad: str = "exact", noise=None) -> None:
        from hqexp.quantum.noise import NoiseSpec

        self.noise = NoiseSpec.from_config(noise)
        self.shots = check_shots(shots, "backend 'aer'")
        self.grad = check_grad(grad, "aer")
        # a run seeds torch's global generator before it builds the model: the simulator's seed
        # drawn from it makes the run's shots reproducible; an explicit seed fixes them outright
        self.seed = int(seed) if seed is not None else (int(torch.randint(0, 2**31, (1,))) if self.shots else None)
        self.exact = self.shots is None
        self._circuits: dict = {}

    def check_available(self) -> None:
        need_module("aer", "qiskit", "pip install 'hqexp[aer]' (qiskit, qiskit-aer)")
        need_module("aer", "qiskit_aer", "pip install 'hqexp[aer]' (qiskit, qiskit-aer)")

    def _circuit(self, ansatz: Ansatz, sampled: bool | None = None):
        sampled = self.shots is not None if sampled is None else sampled
        hit = self._circuits.get((ansatz, sampled))
        if hit is not None:
            return hit
        from qiskit import QuantumCircuit, transpile
        from qiskit.circuit import ParameterVector
        from qiskit_aer import AerSimulator

        n = ansatz.n_qubits
        model = self.noise.model(n) if self.noise.active else None
        if model is not None and ansatz.pair_gate:
            raise ConfigError(
                "backend 'aer' with noise: learned entanglement (pair_gate) is decomposed for Aer (it mis-applies "
                "parameter-bound controlled rotations), which would move the noise; use backend=torch or default_qubit"
            )
        gates = model.steps(ansatz) if model is not None else ansatz.gates()
        occ = [g for g in gates if g.param is not None and g.param[0] in ("x", "w")]
        params = ParameterVector("p", len(occ))
        # Column of [inputs..., weights...] feeding each occurrence, and its shift rule.
        src = np.array(
            [int(g.param[1]) if g.param[0] == "x" else ansatz.n_inputs + int(g.param[1]) for g in occ], dtype=np.int64
        )
        controlled = np.array([g.name.startswith("C") for g in occ], dtype=bool)
        qc = QuantumCircuit(n)
        # Wire i -> qiskit qubit n-1-i makes Qiskit's little-endian basis index equal
        # PennyLane's big-endian one, so probabilities line up without reordering.
        qb = lambda w: n - 1 - w  # noqa: E731
        method = {
            "CNOT": "cx",
            "CZ": "cz",
            "RX": "rx",
            "RY": "ry",
            "RZ": "rz",
            "CRX": "crx",
            "CRY": "cry",
            "CRZ": "crz",
        }
        k = 0
        for g in gates:
            if g.param is None:
                getattr(qc, method[g.name])(*[qb(w) for w in g.wires])
                continue
            if g.param[0] == "c":
                angle = float(g.param[1])
            else:
                angle, k = params[k], k + 1
            getattr(qc, method[g.name])(angle, *[qb(w) for w in g.wires])
        if controlled.any():
            # Decompose controlled rotations first: Aer 0.18 mis-applies parameter-bound
            # crx/cry/crz (probabilities differ from qiskit.quantum_info.Statevector).
            qc = transpile(qc, basis_gates=["rx", "ry", "rz", "cx", "cz"], optimization_level=0)
        if sampled:
            qc.measure_all()
        else:
            qc.save_probabilities()
        if model is None:
            sim = AerSimulator(method="statevector", seed_simulator=self.seed)
        else:
            from hqexp.quantum.noise.qiskit_model import aer_noise_model

            sim = AerSimulator(
                method="density_matrix", noise_model=aer_noise_model(model, readout=sampled), seed_simulator=self.seed
            )
        tqc = transpile(qc, sim, optimization_level=0)
        self._circuits[(ansatz, sampled)] = (tqc, list(params), src, controlled, sim)
        return self._circuits[(ansatz, sampled)]

    def occurrences(self, ansatz: Ansatz) -> tuple[np.ndarray, np.ndarray]:
        """(source column, is-controlled) of every parametrised gate occurrence."""
        _, _, src, controlled, _ = self._circuit(ansatz)
        return src, controlled

    def probabilities(self, ansatz: Ansatz, values: np.ndarray, sampled: bool | None = None) -> np.ndarray:
        """Basis probabilities ``[M, 2**n]`` (shot frequencies when ``sampled``, default: when the
        backend has shots) for ``M`` occurrence-angle vectors ``[M, n_occurrences]``."""
        sampled = self.shots is not None if sampled is None else sampled
        tqc, params, _, _, sim = self._circuit(ansatz, sampled)
        binds = [{p: values[:, j].tolist() for j, p in enumerate(params)}]
        result = sim.run(tqc, parameter_binds=binds, shots=self.shots if sampled else None).result()
        dim = 2**ansatz.n_qubits
        out = np.zeros((values.shape[0], dim))
        for i in range(values.shape[0]):
            if not sampled:
                out[i] = np.asarray(result.data(i)["probabilities"])
            else:
                for key, count in result.get_counts(i).items():
                    out[i, int(key.replace(" ", ""), 2)] = count / self.shots
        if not sampled and self.noise.active:  # Aer's readout error acts on counts only
            from hqexp.quantum.noise.density import readout_probabilities

            out = readout_probabilities(torch.from_numpy(out), self.noise.model(ansatz.n_qubits)).numpy()
        return out

    def expvals(self, ansatz: Ansatz, values: np.ndarray, sampled: bool | None = None) -> np.ndarray:
        probs = torch.from_numpy(self.probabilities(ansatz, values, sampled))
        return ansatz.observable.from_probs(probs, ansatz.n_qubits).numpy()

    def backward_cost(self, ansatz: Ansatz) -> float:
        src, controlled = self.occurrences(ansatz)
        return 2.0 * len(src) + 2.0 * int(controlled.sum())  # two shifts per angle, four for controlled ones

    def execute(self, ansatz, inputs, weights):
        # one complex128 state per circuit, a few circuits in flight, plus the probabilities returned
        require_memory(
            16 * 2**ansatz.n_qubits * 4 + 8 * 2**ansatz.n_qubits * inputs.shape[0],
            "aer",
            ansatz.n_qubits,
            inputs.shape[0],
        )
        return _AerFunction.apply(inputs, weights, self, ansatz)


def _values(inputs: torch.Tensor, weights: torch.Tensor, ansatz: Ansatz) -> np.ndarray:
    x = inputs.detach().to(torch.float64).cpu().numpy()
    w = weights.detach().to(torch.float64).cpu().numpy()
    w = np.broadcast_to(w.reshape(-1, ansatz.n_weights), (x.shape[0], ansatz.n_weights))
    return np.concatenate([x, w], axis=1)


class _AerFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, weights, backend: AerBackend, ansatz: Ansatz):  # type: ignore[override]
        src, _ = backend.occurrences(ansatz)
        values = _values(inputs, weights, ansatz)[:, src]  # [B, n_occurrences]
        ctx.backend, ctx.ansatz, ctx.values = backend, ansatz, values
        ctx.weight_shape = weights.shape
        out = backend.expvals(ansatz, values)
        return torch.as_tensor(out, dtype=inputs.dtype, device=inputs.device)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        values, ansatz, backend = ctx.values, ctx.ansatz, ctx.backend
        src, controlled = backend.occurrences(ansatz)
        B, P = values.shape
        # parameter shift: 2 (4 for controlled rotations) shifted circuits per angle and sample,
        # each returning 2**n probabilities
        require_memory(
            (4 if controlled.any() else 2) * B * P * 8 * 2**ansatz.n_qubits, "aer (parameter shift)", ansatz.n_qubits, B
        )

        # grad=parameter_shift: every shifted circuit sampled with the backend's shots, as a device
        # does; grad=exact: the shifted circuits exact, i.e. the analytic gradient
        sampled = backend.shots is not None and backend.grad == "parameter_shift"

        def shifted(amount: float) -> np.ndarray:  # f with each occurrence shifted alone: [B, P, n_out]
            eye = np.eye(P)[None] * amount
            return backend.expvals(ansatz, (values[:, None, :] + eye).reshape(-1, P), sampled).reshape(B, P, -1)

        jac = (shifted(math.pi / 2) - shifted(-math.pi / 2)) / 2  # exact for Pauli rotations
        if controlled.any():
            cp, cm = (math.sqrt(2) + 1) / (4 * math.sqrt(2)), (math.sqrt(2) - 1) / (4 * math.sqrt(2))
            four = cp * 2 * jac - cm * (shifted(3 * math.pi / 2) - shifted(-3 * math.pi / 2))
            jac = np.where(controlled[None, :, None], four, jac)
        g_occ = np.einsum("bpo,bo->bp", jac, grad_out.detach().double().cpu().numpy())
        g_all = np.zeros((B, ansatz.n_inputs + ansatz.n_weights))
        np.add.at(g_all, (slice(None), src), g_occ)  # occurrences of one value add up
        g = torch.as_tensor(g_all).to(dtype=grad_out.dtype, device=grad_out.device)
        n = ansatz.n_inputs
        grad_x = g[:, :n] if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            gw = g[:, n:]
            grad_w = (
                gw.reshape(ctx.weight_shape)
                if len(ctx.weight_shape) > len(ansatz.weight_shape)
                else gw.sum(0).reshape(ctx.weight_shape)
            )
        return grad_x, grad_w, None, None
