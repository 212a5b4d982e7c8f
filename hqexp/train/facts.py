"""What a model is and where its circuits ran: parameter counts, bytes, backends used."""

from __future__ import annotations

from torch import nn


def model_facts(model: nn.Module) -> tuple[dict[str, float], str]:
    """``(params/* and model/bytes metrics, comma-separated backends in use)``."""
    from hqexp.models import count_parameters, quantum_layers
    from hqexp.train.int8 import model_bytes

    counts = count_parameters(model)
    used = sorted({q.backend_used for q in quantum_layers(model).values()})
    return (
        {
            "params/total": counts["total"],
            "params/quantum": counts["quantum"],
            "params/trainable": counts["trainable"],
            "model/bytes": model_bytes(model),
        },
        ",".join(used) or "none",
    )


def backend_report(rec, model: nn.Module) -> None:
    """Record what ran where: final backend, switches and forward passes per backend."""
    from hqexp.models import quantum_layers

    layers = quantum_layers(model)
    if not layers:
        return
    events = [f"{name}: {e}" for name, q in layers.items() for e in getattr(q, "events", [])]
    rec.set_tags(
        {
            "backend_used": ",".join(sorted({q.backend_used for q in layers.values()})),
            **({"backend_events": " | ".join(events)[:5000]} if events else {}),
        }
    )
    steps: dict[str, float] = {}
    for q in layers.values():
        for b, n in getattr(q, "steps", {}).items():
            steps[f"backend/forwards/{b}"] = steps.get(f"backend/forwards/{b}", 0) + n
    noise_tags: dict[str, str] = {}
    for q in layers.values():
        spec = q.backend.noise
        if spec.active:  # what the device did to the circuits: kind, layout, calibration, SWAPs
            model = spec.model(q.ansatz.n_qubits)
            noise_tags.update(model.tags())
            swaps = float(model.swaps(q.ansatz))
            steps["noise/swaps_per_circuit"] = max(steps.get("noise/swaps_per_circuit", 0.0), swaps)
    if noise_tags:
        rec.set_tags(noise_tags)
    compile_s = sum(getattr(q.backend, "compile_s", 0.0) for q in layers.values())
    if compile_s:  # the compiled path's first calls (tracing, code generation): part of time/fit_s
        steps["time/compile_s"] = compile_s
    rec.log_metrics({**steps, "backend/switches": float(len(events))})
