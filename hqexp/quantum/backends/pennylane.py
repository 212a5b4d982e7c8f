"""PennyLane devices (``default_qubit``, ``lightning_qubit``, ``lightning_gpu``) running
PennyLane's own templates: an independent reference for our simulator.

PennyLane is imported only when a circuit is first built, so importing hqexp never
imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.backends.base import Backend, check_grad, need_module
from hqexp.quantum.memory import require_memory
from hqexp.quantum.sampling import check_shots

_ROT = {"angle_x": "X", "angle_y": "Y", "angle_z": "Z"}


class PennyLaneBackend(Backend):
    """A PennyLane ``device``; ``shots`` samples instead of exact values, ``grad`` picks the gradient.

    ``grad=exact`` differentiates the exact circuit (backprop on default.qubit, adjoint on the
    lightning devices); with ``shots`` the forward value is then sampled by a second, sampling
    QNode (not what a device computes; tagged so). ``grad=parameter_shift`` uses PennyLane's own
    parameter-shift rule, each shifted tape sampled with ``shots``. ``seed`` seeds the device's
    sampler (None: drawn from torch's global generator, which the run seeds).
    """

    def __init__(
        self,
        device: str,
        exact_diff: str,
        name: str,
        shots: int | None = None,
        grad: str = "exact",
        seed: int | None = None,
        noise=None,
    ) -> None:
        from hqexp.quantum.noise import NoiseSpec

        self.noise = NoiseSpec.from_config(noise)
        if self.noise.active:
            if device != "default.qubit":
                raise ConfigError(
                    f"backend {name!r} cannot apply noise={self.noise.kind} (the lightning devices simulate pure "
                    "states); use backend=torch, default_qubit (default.mixed) or aer"
                )
            device, exact_diff = "default.mixed", "backprop"
        self.device_name, self.name = device, name
        self.grad = check_grad(grad, name)
        self.shots = check_shots(shots, f"backend {name!r}")
        self.exact = self.shots is None
        self.exact_diff = exact_diff
        self.diff_method = "parameter-shift" if self.grad == "parameter_shift" else exact_diff
        self.seed = int(seed) if seed is not None else (int(torch.randint(0, 2**31, (1,))) if shots else None)
        self._qnodes: dict = {}

    def check_available(self) -> None:
        need_module(self.name, "pennylane", "pip install pennylane pennylane-lightning")
        if self.device_name == "lightning.gpu":
            need_module(
                self.name,
                "pennylane_lightning.lightning_gpu_ops",
                "pip install 'hqexp[gpu]' (pennylane-lightning-gpu, needs an NVIDIA GPU with CUDA)",
            )
            if not torch.cuda.is_available():
                raise BackendUnavailable("backend 'lightning_gpu' needs an NVIDIA GPU with CUDA; none is visible")
        elif self.device_name == "lightning.qubit":
            need_module(self.name, "pennylane_lightning", "pip install pennylane-lightning")

    def _check_memory(self, ansatz: Ansatz, batch: int, grad: bool) -> None:
        """complex128 states: default.qubit broadcasts the batch and, with backprop, keeps one
        state per gate for autograd; the lightning devices run one sample at a time."""
        state = 16 * 2**ansatz.n_qubits
        if self.device_name == "default.qubit":
            need = state * batch * ((len(ansatz.gates()) + 2) if grad and self.diff_method == "backprop" else 3)
        else:
            need = state * 4
        require_memory(
            need, self.name, ansatz.n_qubits, batch, "cuda" if self.device_name == "lightning.gpu" else "cpu"
        )

    def backward_cost(self, ansatz: Ansatz) -> float:
        if self.grad == "parameter_shift":
            from hqexp.quantum.shift import shift_circuits

            return float(shift_circuits(ansatz, True, True))
        return super().backward_cost(ansatz)

    def _qnode(self, ansatz: Ansatz, diff_method: str | None = None, shots: int | None = -1) -> Callable:
        diff = diff_method or self.diff_method
        shots = self.shots if shots == -1 else shots
        key = (ansatz, diff, shots)
        hit = self._qnodes.get(key)
        if hit is None:
            if self.noise.active:
                from hqexp.quantum.backends.pennylane_noise import build_noisy_qnode

                hit = build_noisy_qnode(ansatz, self.noise.model(ansatz.n_qubits), diff, shots, self.seed)
            else:
                hit = build_qnode(ansatz, self.device_name, diff, shots, seed=self.seed)
            self._qnodes[key] = hit
        return hit

    def execute(self, ansatz, inputs, weights):
        if self.shots is not None and self.grad == "exact":
            # the analytic gradient of the exact circuit under the sampled value
            exact = self._run(ansatz, inputs, weights, self._qnode(ansatz, self.exact_diff, None), self.exact_diff)
            with torch.no_grad():
                sampled = self._run(ansatz, inputs, weights, self._qnode(ansatz, "best", self.shots), "best")
            return exact + (sampled - exact).detach()
        return self._run(ansatz, inputs, weights, self._qnode(ansatz), self.diff_method)

    def _run(self, ansatz, inputs, weights, qnode, diff_method: str):
        self._check_memory(ansatz, inputs.shape[0], torch.is_grad_enabled())
        x = inputs.to(torch.float64)
        w = weights.to(torch.float64)
        if w.dim() == len(ansatz.weight_shape):
            if diff_method in ("adjoint", "parameter-shift"):
                # Neither adjoint nor parameter-shift differentiation takes broadcast tapes
                # (PennyLane #4462): one tape per sample.
                out = torch.stack([_as_row(qnode(x[b], w), ansatz) for b in range(x.shape[0])])
            else:
                out = _as_matrix(qnode(x, w), ansatz, x.shape[0])
        else:
            out = torch.stack([_as_row(qnode(x[b], w[b]), ansatz) for b in range(x.shape[0])])
        return out.to(inputs.dtype)

    def states(self, ansatz, inputs, weights):
        if self.noise.active:
            raise ConfigError(
                f"backend {self.name!r} with noise holds density matrices, not state vectors; "
                "set noise=none for state-based diagnostics"
            )
        if self.shots is not None:
            raise ConfigError(
                f"backend {self.name!r} samples (shots={self.shots}): state vectors come from exact "
                "simulation; set backend.options.shots=null for state-based diagnostics"
            )
        key = ("state", ansatz)
        qnode = self._qnodes.get(key)
        if qnode is None:
            qnode = self._qnodes[key] = build_qnode(ansatz, self.device_name, "best", None, state=True)
        x, w = inputs.to(torch.float64), weights.to(torch.float64)
        with torch.no_grad():
            rows = [
                torch.as_tensor(qnode(x[b], w[b] if w.dim() > len(ansatz.weight_shape) else w))
                for b in range(x.shape[0])
            ]
        return torch.stack(rows).to(torch.complex128)


def _as_row(res, ansatz: Ansatz) -> torch.Tensor:
    if isinstance(res, (tuple, list)):
        return torch.stack([torch.as_tensor(r) for r in res])
    return torch.as_tensor(res).reshape(ansatz.n_out)


def _as_matrix(res, ansatz: Ansatz, batch: int) -> torch.Tensor:
    if isinstance(res, (tuple, list)):
        return torch.stack([torch.as_tensor(r).reshape(batch) for r in res], dim=-1)
    return torch.as_tensor(res).reshape(batch, ansatz.n_out)


# ------------------------------------------------------------------ the QNode
def _pair_block(ansatz: Ansatz, inputs) -> None:
    import pennylane as qml

    gate = {"crx": qml.CRX, "cry": qml.CRY, "crz": qml.CRZ}[ansatz.pair_gate]
    for p, (c, t) in enumerate(ansatz.pairs()):
        gate(inputs[..., ansatz.n_qubits + p], wires=[c, t])


def _layers(ansatz: Ansatz, weights, wires, inputs=None) -> None:
    import pennylane as qml

    spec = ansatz.spec
    two = qml.CNOT if ansatz.entangler == "cnot" else qml.CZ
    if ansatz.pre_rotation is not None:
        name, angle = ansatz.pre_rotation
        for q in wires:
            getattr(qml, name)(angle, wires=q)
    if not ansatz.pair_gate:
        spec.pennylane_layers(ansatz, weights, wires, two)
        return
    # The learned-entanglement block sits after every layer: one layer at a time.
    for layer in range(ansatz.n_layers):
        spec.pennylane_layer(ansatz, weights, layer, two)
        _pair_block(ansatz, inputs)


def _measure(ansatz: Ansatz, wires):
    return ansatz.observable.pennylane(list(wires))


def build_qnode(
    ansatz: Ansatz,
    device: str,
    diff_method: str,
    shots: int | None = None,
    state: bool = False,
    seed: int | None = None,
) -> Callable:
    """A torch-interface QNode ``f(inputs, weights)`` for ``ansatz`` on ``device`` (its final
    state instead of the measurement with ``state``)."""
    import pennylane as qml

    wires = list(range(ansatz.n_qubits))
    dev = qml.device(device, wires=wires, **({"seed": seed} if seed is not None and shots is not None else {}))

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs[..., : ansatz.n_qubits], wires=wires, rotation=_ROT[ansatz.embedding])
        _layers(ansatz, weights, wires, inputs)
        return qml.state() if state else _measure(ansatz, wires)

    if shots is not None:
        circuit = qml.set_shots(circuit, shots=shots)
    return circuit
