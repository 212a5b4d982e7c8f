"""Models are plain nn.Modules; tasks (hqexp.train) own losses, metrics and optimisers."""

from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total, trainable and quantum (inside any QuantumLayer) parameter counts."""
    from hqexp.quantum import QuantumLayer

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    quantum = sum(p.numel() for m in model.modules() if isinstance(m, QuantumLayer) for p in m.parameters())
    return {"total": total, "trainable": trainable, "quantum": quantum}


def quantum_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{qualified name: QuantumLayer}`` of every quantum layer in ``model``."""
    from hqexp.quantum import QuantumLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, QuantumLayer)}


def clone(model: nn.Module) -> nn.Module:
    """A deep copy that shares backend objects: simulator handles such as PennyLane's
    lightning devices cannot be copied, and they hold no trained state."""
    import copy

    memo = {id(q.backend): q.backend for q in quantum_layers(model).values()}
    return copy.deepcopy(model, memo)
