"""``torch``: hqexp's own batched state-vector simulator (``hqexp.quantum.statevector``)."""

from __future__ import annotations

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.backends.base import Backend, check_grad
from hqexp.quantum.compiled import CompiledSteps, compile_mode
from hqexp.quantum.sampling import ShotSampler
from hqexp.quantum.shift import ShiftRule, shift_circuits
from hqexp.quantum.statevector import probabilities, torch_expval

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class TorchBackend(Backend):
    """The fast path, on CPU or CUDA; ``dtype`` is ``complex64`` or ``complex128``.

    ``shots`` (None: exact) samples every circuit's readout (:mod:`hqexp.quantum.sampling`) from a
    generator seeded by ``seed`` (None: drawn from torch's global generator, which the run seeds);
    ``grad="parameter_shift"`` computes gradients from shifted circuits, each sampled with ``shots``
    (:mod:`hqexp.quantum.shift`), as a device would; ``grad="exact"`` with shots keeps the analytic
    gradient of the exact circuit under the sampled value (not what a device can do; tagged so).
    """

    name = "torch"

    def __init__(
        self,
        dtype: str = "complex64",
        device: str | None = None,
        dense_max_qubits: int | None = None,
        compile: bool | str = False,
        compile_backend: str = "inductor",
        shots: int | None = None,
        grad: str = "exact",
        seed: int | None = None,
        noise=None,
    ) -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"torch backend dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if dense_max_qubits is not None and (
            isinstance(dense_max_qubits, bool) or not isinstance(dense_max_qubits, int) or dense_max_qubits < 0
        ):
            raise ConfigError(
                "torch backend dense_max_qubits must be an int >= 0 (0: never the small-circuit "
                f"path) or null (the measured size rule), got {dense_max_qubits!r}"
            )
        self.dtype = DTYPES[dtype]
        self.device = device
        self.dense_max_qubits = dense_max_qubits
        mode = compile_mode(compile)
        if mode is not None:
            if compile_backend not in torch.compiler.list_backends(exclude_tags=()):
                raise ConfigError(
                    f"torch backend compile_backend must be a torch.compile backend "
                    f"({', '.join(torch.compiler.list_backends())}, or a debug one such "
                    f"as aot_eager), got {compile_backend!r}"
                )
        # the compiled path (hqexp.quantum.compiled): off by default, slower than eager on CPU
        self.compiled = CompiledSteps(mode, compile_backend) if mode is not None else None
        self.grad = check_grad(grad, "torch")
        self.sampler = ShotSampler(shots, seed, "backend 'torch'")
        self.shots = self.sampler.shots
        self.exact = self.shots is None
        from hqexp.quantum.noise import NoiseSpec

        self.noise = NoiseSpec.from_config(noise)
        if self.compiled is not None and self.noise.active:
            raise ConfigError(
                "backend 'torch': noise runs on the density-matrix path, not the compiled one; "
                "set backend.options.compile=false"
            )
        if self.compiled is not None and (self.shots is not None or self.grad != "exact"):
            what = "shots" if self.shots is not None else "grad=parameter_shift"
            raise ConfigError(
                f"backend 'torch': {what} runs on the eager path, not the compiled one; "
                "set backend.options.compile=false"
            )

    @property
    def compile_s(self) -> float:
        """Seconds spent in calls that traced and compiled a step (0 without ``compile``)."""
        return self.compiled.compile_s if self.compiled is not None else 0.0

    def check_available(self) -> None:
        if self.device and self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(
                "backend 'torch' was asked for device 'cuda' but torch sees no CUDA GPU "
                "(install a CUDA build of torch, or set backend.device=null)"
            )

    def nan_propagates(self, ansatz):
        if self.noise.active or self.shots is not None or self.grad != "exact":
            return False  # sampled or noisy outputs: check the inputs before any work
        # every embedding and rotation is a full 2×2 on its wire, so a NaN angle reaches every
        # amplitude (NaN·0 is NaN); a controlled pair gate leaves the control-0 half untouched,
        # which a projector measurement can read alone
        return not ansatz.pair_gate

    def backward_cost(self, ansatz) -> float:
        if self.grad == "parameter_shift":
            return float(shift_circuits(ansatz, True, True))
        return super().backward_cost(ansatz)

    def execute(self, ansatz, inputs, weights):
        if self.device is not None and inputs.device != torch.device(self.device):
            return self._execute(ansatz, inputs.to(self.device), weights.to(self.device)).to(inputs.device)
        return self._execute(ansatz, inputs, weights)

    def _execute(self, ansatz, inputs, weights):
        noisy = self.noise.active
        if self.shots is None and self.grad == "exact":
            if not noisy:  # the fast path
                run = torch_expval if self.compiled is None else self.compiled
                return run(ansatz, inputs, weights, self.dtype, self.dense_max_qubits)
            from hqexp.quantum.noise import density

            model = self.noise.model(ansatz.n_qubits)
            if density.heisenberg_applies(ansatz, weights):
                return density.expectations(ansatz, model, inputs, weights, self.dtype)
            p = density.probabilities(ansatz, model, inputs, weights, self.dtype)
            return ansatz.observable.from_probs(p, ansatz.n_qubits)

        if noisy:
            from hqexp.quantum.noise import density

            model = self.noise.model(ansatz.n_qubits)

            def probs(x, w, pair):
                return density.probabilities(ansatz, model, x, w, self.dtype, pair)
        else:

            def probs(x, w, pair):
                return probabilities(ansatz, x, w, self.dtype, pair)

        def estimate(p):
            return self.sampler.estimate(ansatz, p)

        if self.grad == "parameter_shift":
            itemsize = torch.empty((), dtype=self.dtype).element_size()
            return ShiftRule.apply(inputs, weights, probs, estimate, ansatz, itemsize)
        # shots with the analytic gradient: the sampled value, the exact circuit's gradient
        p = probs(inputs, weights, None)
        exact = ansatz.observable.from_probs(p, ansatz.n_qubits)
        return exact + (estimate(p.detach()) - exact).detach()

    def states(self, ansatz, inputs, weights):
        from hqexp.quantum.statevector import simulate

        if self.noise.active:
            raise ConfigError(
                f"backend 'torch' with noise={self.noise.kind} holds density matrices, not state vectors; "
                "set noise=none for state-based diagnostics"
            )
        if self.shots is not None:
            raise ConfigError(
                f"backend 'torch' samples (shots={self.shots}): state vectors come from exact simulation; "
                "set backend.options.shots=null for state-based diagnostics"
            )
        dev = self.device or inputs.device
        with torch.no_grad():
            psi = simulate(ansatz, inputs.to(dev), weights.to(dev), self.dtype)
        return psi.to(torch.complex128).cpu()
