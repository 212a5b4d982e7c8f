"""``torch``: hqexp's own batched state-vector simulator (``hqexp.quantum.statevector``)."""

from __future__ import annotations

import torch

from hqexp.errors import BackendUnavailable, ConfigError
from hqexp.quantum.backends.base import Backend

DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


class TorchBackend(Backend):
    """The fast path, on CPU or CUDA; ``dtype`` is ``complex64`` or ``complex128``."""

    name = "torch"

    def __init__(self, dtype: str = "complex64", device: str | None = None) -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"torch backend dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.dtype = DTYPES[dtype]
        self.device = device

    def check_available(self) -> None:
        if self.device and self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable(
                "backend 'torch' was asked for device 'cuda' but torch sees no CUDA GPU "
                "(install a CUDA build of torch, or set backend.device=null)"
            )

    def execute(self, ansatz, inputs, weights):
        from hqexp.quantum.statevector import torch_expval

        if self.device is not None and inputs.device != torch.device(self.device):
            out = torch_expval(ansatz, inputs.to(self.device), weights.to(self.device), self.dtype)
            return out.to(inputs.device)
        return torch_expval(ansatz, inputs, weights, self.dtype)

    def states(self, ansatz, inputs, weights):
        from hqexp.quantum.statevector import simulate

        dev = self.device or inputs.device
        with torch.no_grad():
            psi = simulate(ansatz, inputs.to(dev), weights.to(dev), self.dtype)
        return psi.to(torch.complex128).cpu()
