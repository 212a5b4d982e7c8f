"""Operations per classification, and the energy they would take on a named process node.

Where no meter exists (no RAPL, no NVML), the spiking-network literature estimates inference
energy by counting operations and multiplying by per-operation energies of a named process node:
E = Σ E_MAC(width) · MACs + Σ E_AC(width) · ACs (Horowitz, ISSCC 2014; used by Spikformer, Zhou
et al., ICLR 2023). Counted by forward hooks while a model classifies real inputs:

* ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``: dense multiply-accumulates, ``out elements ×
  in channels / groups × kernel`` (a Linear: ``rows × in × out``). A layer whose input is spikes
  (every value 0 or 1) does accumulates only, one per non-zero input and fan-out: its dense count
  × the measured fraction of non-zero inputs (the spike rate × timesteps, as the layer is called
  per timestep or over the time axis). A layer with 1-bit weights (``weight_bits=1``) adds or
  subtracts: accumulates too. Activations are float32 here, so 2- and 8-bit weights are counted at
  float32 width (their memory at their width); dynamically quantised INT8 Linears at 8 bits.
* A quantum layer (anything with an ``ansatz``): its gates per circuit (one- and two-qubit),
  measurements and circuit executions — counted, never converted to joules: no public figure of a
  QPU's energy per gate exists that this estimate could name.

Element-wise work (normalisation, pooling, the LIF update, activations) and all memory traffic
are not counted; memory often dominates (Dampfhoffer et al., IEEE TETCI 2023), so the estimate
is a lower bound of the compute, not a measurement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from hqexp.errors import ConfigError


class OpEnergy:
    """Per-operation energies (joules) by operand width, with the source they come from.

    (A plain class, not a dataclass: Hydra would turn a dataclass argument into a config.)"""

    def __init__(self, name: str, source: str, mac_j: Mapping[str, float], ac_j: Mapping[str, float]) -> None:
        self.name, self.source = name, source
        for kind, table in (("mac_j", mac_j), ("ac_j", ac_j)):
            table = {str(k): v for k, v in dict(table).items()}
            if unknown := sorted(set(table) - set(WIDTHS)):
                raise ConfigError(f"ops_energy={name}: {kind} widths are {', '.join(WIDTHS)}, not {', '.join(unknown)}")
            if "fp32" not in table or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in table.values()
            ):
                raise ConfigError(f"ops_energy={name}: {kind} needs a non-negative joules value for fp32")
            setattr(self, kind, table)

    def joules(self, counts: OpCounts) -> float:
        """The classical operations of ``counts`` (per classification) in joules."""

        def at(table: Mapping[str, float], width: str) -> float:
            return table.get(width, table["fp32"])

        return sum(n * at(self.mac_j, w) for w, n in counts.macs.items()) + sum(
            n * at(self.ac_j, w) for w, n in counts.acs.items()
        )


@dataclass
class OpCounts:
    """Operations per classification (after :meth:`OpCounter.per_sample`), by operand width (:data:`WIDTHS`)."""

    macs: dict[str, float] = field(default_factory=dict)
    acs: dict[str, float] = field(default_factory=dict)
    gates_1q: float = 0.0
    gates_2q: float = 0.0
    measurements: float = 0.0
    circuits: float = 0.0

    def metrics(self) -> dict[str, float]:
        out = {"ops/macs": sum(self.macs.values()), "ops/acs": sum(self.acs.values())}
        if self.circuits:
            out.update(
                {
                    "ops/quantum/circuits": self.circuits,
                    "ops/quantum/gates_1q": self.gates_1q,
                    "ops/quantum/gates_2q": self.gates_2q,
                    "ops/quantum/measurements": self.measurements,
                }
            )
        return out


DENSE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: operand widths a profile prices (activations are float32 here; dynamically quantised Linears int8)
WIDTHS = ("fp32", "int8")


def uncountable(model: nn.Module) -> str | None:
    """The first layer whose work this counter would miss: its own matrix-shaped parameters, and
    neither a Linear/Conv, a quantum layer, nor one that says its ``extra_macs``; None when all count."""
    int8 = _dynamic_int8_linear()
    for name, m in model.named_modules():
        if isinstance(m, DENSE) or (int8 and isinstance(m, int8)) or hasattr(m, "extra_macs"):
            continue
        if hasattr(m, "ansatz"):
            continue
        if isinstance(m, nn.RNNBase | nn.MultiheadAttention | nn.Transformer):
            return f"{name or 'the model'} ({type(m).__name__})"
        if any(p.dim() >= 2 for p in m.parameters(recurse=False)):
            return f"{name or 'the model'} ({type(m).__name__})"
    return None


def _is_spikes(x: torch.Tensor) -> bool:
    return x.numel() > 0 and bool(((x == 0) | (x == 1)).all())


def dense_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Multiply-accumulates of one call of a Linear or Conv layer, dense."""
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        k = 1
        for s in module.kernel_size:
            k *= s
        return float(y.numel()) * (module.in_channels // module.groups) * k
    in_f, out_f = module.in_features, module.out_features
    return float(x.numel() // in_f) * in_f * out_f


class OpCounter:
    """Forward hooks on ``model`` that count its operations until :meth:`close`."""

    def __init__(self, model: nn.Module) -> None:
        self.macs: dict[str, float] = defaultdict(float)
        self.acs: dict[str, float] = defaultdict(float)
        self.quantum = {"gates_1q": 0.0, "gates_2q": 0.0, "measurements": 0.0, "circuits": 0.0}
        self._per_circuit: dict[int, tuple[int, int, int]] = {}
        self._hooks = []
        int8 = _dynamic_int8_linear()
        for m in model.modules():
            if hasattr(m, "ansatz") and hasattr(m.ansatz, "gates"):
                self._hooks.append(m.register_forward_hook(self._quantum))
            elif isinstance(m, DENSE) or (int8 and isinstance(m, int8)):
                self._hooks.append(m.register_forward_hook(self._dense))
            elif hasattr(m, "extra_macs"):  # a layer's own matrix products (a LoRA adapter)
                self._hooks.append(m.register_forward_hook(self._extra))

    def _extra(self, m: nn.Module, inputs: tuple, out) -> None:
        if isinstance(inputs[0], torch.Tensor):
            self.macs["fp32"] += float(m.extra_macs(inputs[0]))

    def _dense(self, m: nn.Module, inputs: tuple, out) -> None:
        x = inputs[0]
        if not isinstance(x, torch.Tensor):
            return
        dense = dense_macs(m, x, out)
        if not isinstance(m, DENSE):  # a dynamically quantised Linear
            self.macs["int8"] += dense
        elif _is_spikes(x):
            self.acs["fp32"] += dense * float((x != 0).float().mean())
        elif getattr(m, "weight_bits", 32) == 1:
            self.acs["fp32"] += dense
        else:
            self.macs["fp32"] += dense

    def _quantum(self, m: nn.Module, inputs: tuple, out) -> None:
        a = m.ansatz
        if id(a) not in self._per_circuit:
            gates = list(a.gates())
            one = sum(1 for g in gates if len(g.wires) == 1)
            self._per_circuit[id(a)] = (one, len(gates) - one, a.n_qubits)
        one, two, meas = self._per_circuit[id(a)]
        x = inputs[0]
        circuits = float(x.reshape(-1, x.shape[-1]).shape[0]) if isinstance(x, torch.Tensor) and x.dim() else 1.0
        self.quantum["circuits"] += circuits
        self.quantum["gates_1q"] += circuits * one
        self.quantum["gates_2q"] += circuits * two
        self.quantum["measurements"] += circuits * meas

    def per_sample(self, samples: int) -> OpCounts:
        """What was counted, divided by the ``samples`` classified meanwhile."""
        n = max(int(samples), 1)
        q = {k: v / n for k, v in self.quantum.items()}
        return OpCounts(
            {w: v / n for w, v in self.macs.items()},
            {w: v / n for w, v in self.acs.items()},
            q["gates_1q"],
            q["gates_2q"],
            q["measurements"],
            q["circuits"],
        )

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


def _dynamic_int8_linear():
    try:
        from torch.ao.nn.quantized.dynamic import Linear

        return Linear
    except ImportError:  # pragma: no cover - every supported torch has it
        return None


def weight_bytes(model: nn.Module) -> float:
    """Parameter memory at each layer's width: ``weight_bits`` where a layer has it, else its dtype."""
    total = 0.0
    for m in model.modules():
        bits = getattr(m, "weight_bits", None)
        for name, p in m.named_parameters(recurse=False):
            width = bits if (bits is not None and name == "weight") else p.element_size() * 8
            total += p.numel() * width / 8
    return total
