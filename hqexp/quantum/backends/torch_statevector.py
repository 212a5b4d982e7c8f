"""``torch``: hqexp's own batched state-vector simulator (``hqexp.quantum.statevector``)."""

from __future__ import annotations

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.backends.base import Backend
from hqexp.quantum.compiled import CompiledSteps, compile_mode
from hqexp.quantum.statevector import torch_expval

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class TorchBackend(Backend):
    """The fast path, on CPU or CUDA; ``dtype`` is ``complex64`` or ``complex128``."""

    name = "torch"

    def __init__(
        self,
        dtype: str = "complex64",
        device: str | None = None,
        dense_max_qubits: int | None = None,
        compile: bool | str = False,
        compile_backend: str = "inductor",
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
        # every embedding and rotation is a full 2×2 on its wire, so a NaN angle reaches every
        # amplitude (NaN·0 is NaN); a controlled pair gate leaves the control-0 half untouched,
        # which a projector measurement can read alone
        return not ansatz.pair_gate

    def execute(self, ansatz, inputs, weights):
        run = torch_expval if self.compiled is None else self.compiled
        if self.device is not None and inputs.device != torch.device(self.device):
            out = run(ansatz, inputs.to(self.device), weights.to(self.device), self.dtype, self.dense_max_qubits)
            return out.to(inputs.device)
        return run(ansatz, inputs, weights, self.dtype, self.dense_max_qubits)

    def states(self, ansatz, inputs, weights):
        from hqexp.quantum.statevector import simulate

        dev = self.device or inputs.device
        with torch.no_grad():
            psi = simulate(ansatz, inputs.to(dev), weights.to(dev), self.dtype)
        return psi.to(torch.complex128).cpu()
