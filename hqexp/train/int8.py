"""Model size and dynamic INT8 quantisation of the linear layers, measured on the test split."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn


def model_bytes(model: nn.Module) -> int:
    """Bytes of the serialised ``state_dict`` (what a checkpoint of the weights costs)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def quantize_int8(model: nn.Module) -> nn.Module:
    """A CPU copy with LoRA merged and every ``nn.Linear`` dynamically quantised to INT8.

    Weights become int8 with a per-tensor scale; activations are quantised on the fly.
    QuantumLayers and other modules stay float.
    """
    from hqexp.models import clone
    from hqexp.models.generations import merge_lora

    m = merge_lora(clone(model).cpu().eval())
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, but is what ships with torch.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8, inplace=True)


@torch.inference_mode()
def _scores(model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    probs, ys = [], []
    for x, y in loader:
        probs.append(model(x.cpu()).float().softmax(-1))
        ys.append(y)
    return torch.cat(probs), torch.cat(ys)


def int8_report(model: nn.Module, loader, n_classes: int) -> dict[str, float]:
    """Test metrics of the float model and its INT8 copy, both on CPU with the same code.

    Returns ``int8/test/<metric>``, ``int8/delta_<metric>`` (INT8 − float), and
    ``model/bytes_float`` / ``int8/model_bytes``.
    """
    from hqexp.models import clone
    from hqexp.tracking.metrics import classification_metrics

    ref = clone(model).cpu().eval()
    q = quantize_int8(model)
    out = {"model/bytes_float": float(model_bytes(ref)), "int8/model_bytes": float(model_bytes(q))}
    results = {}
    for name, m in (("float", ref), ("int8", q)):
        p, y = _scores(m, loader)
        metrics = classification_metrics(n_classes)
        metrics.update(p[:, 1] if n_classes == 2 else p, y)
        results[name] = {k: float(v) for k, v in metrics.compute().items()}
    for k, v in results["int8"].items():
        out[f"int8/test/{k}"] = v
        out[f"int8/delta_{k}"] = v - results["float"][k]
    return out
