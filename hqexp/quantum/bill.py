"""The hardware bill: what the circuits a run executed would cost on a provider's QPU.

Always an **estimate**, computed from counted circuits and shots (:mod:`hqexp.quantum.tally`)
and a provider profile (``conf/qpu/*.yaml``) whose every figure names its source and date.
Two billing models cover the public offers:

* :class:`TimeBilled` — billed per QPU second (IBM Quantum). A circuit's time is its shots
  times (repetition delay + circuit duration); the duration is an ASAP schedule of the circuit's
  gates with the profile's native gate times (RZ is virtual on IBM hardware, so free; an RX or RY
  is two √X pulses; CNOT and CZ one native two-qubit gate; a controlled rotation two of them).
* :class:`ShotBilled` — billed per task and per shot (Amazon Braket): one task per circuit.

Not included, and said so on every run: queueing, compilation, per-job latency, error
mitigation, sessions, discounts and taxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hqexp.errors import ConfigError
from hqexp.quantum.ansatz import Ansatz
from hqexp.quantum.tally import Counts, totals

NOT_INCLUDED = "queueing, compilation, per-job latency, error mitigation, sessions, discounts, taxes"


def _positive(value: object, key: str, profile: str, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (not allow_zero and value == 0):
        raise ConfigError(f"qpu={profile}: {key} must be a {'non-negative' if allow_zero else 'positive'} number")
    return float(value)


def circuit_duration_s(ansatz: Ansatz, t1q: float, t2q: float, t_measure: float) -> float:
    """Duration of one shot's gates and readout: an ASAP schedule over the wires."""
    busy = [0.0] * ansatz.n_qubits
    for g in ansatz.gates():
        if len(g.wires) == 1:
            d = 0.0 if g.name == "RZ" else 2 * t1q  # RX, RY: RZ·√X·RZ·√X·RZ
            busy[g.wires[0]] += d
        else:
            d = t2q if g.name in ("CNOT", "CZ") else 2 * t2q + 2 * t1q  # controlled rotations: 2 CX + rotations
            a, b = g.wires
            busy[a] = busy[b] = max(busy[a], busy[b]) + d
    return max(busy) + t_measure


@dataclass
class Bill:
    """A priced tally: metrics under ``qpu/*`` and tags under ``qpu.*``."""

    circuits: int
    shots: int
    shots_source: str  # sampled | assumed | mixed
    seconds: float | None
    usd: float
    profile: str
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        out = {"qpu/circuits": float(self.circuits), "qpu/shots": float(self.shots), "qpu/est_usd": self.usd}
        if self.seconds is not None:
            out["qpu/est_seconds"] = self.seconds
        return out

    def tags(self) -> dict[str, str]:
        return {
            "qpu.profile": self.profile,
            "qpu.shots": self.shots_source,
            "qpu.estimate": "estimate: " + "; ".join(self.notes) + f"; not included: {NOT_INCLUDED}",
        }


class Profile:
    """A provider's billing model. ``assumed_shots`` prices circuits that ran exactly."""

    kind = "?"

    def __init__(self, name: str, provider: str, assumed_shots: int = 1000, sources: Mapping | None = None) -> None:
        if isinstance(assumed_shots, bool) or not isinstance(assumed_shots, int) or assumed_shots < 1:
            raise ConfigError(f"qpu={name}: assumed_shots must be a positive int, got {assumed_shots!r}")
        self.name, self.provider, self.assumed_shots = name, provider, assumed_shots
        self.sources = dict(sources or {})

    def shots_of(self, c: Counts) -> int:
        return c.shots + c.exact_circuits * self.assumed_shots

    def circuit_seconds(self, ansatz: Ansatz, shots: int) -> float | None:
        """Estimated QPU seconds of one circuit with ``shots`` shots (None: the profile has no timing)."""
        return None

    def usd(self, counts: Mapping[Ansatz, Counts]) -> float:
        raise NotImplementedError

    def bill(self, counts: Mapping[Ansatz, Counts]) -> Bill:
        """The estimate for ``counts`` (a tally snapshot)."""
        tot = totals(counts)
        exact, sampled = tot.exact_circuits, tot.circuits - tot.exact_circuits
        source = "assumed" if sampled == 0 else ("sampled" if exact == 0 else "mixed")
        seconds = self.seconds(counts)
        notes = [f"{self.provider} ({self.name})"]
        if exact:
            notes.append(f"{exact} exactly simulated circuits priced at qpu.assumed_shots={self.assumed_shots}")
        notes += [f"{k}: {v}" for k, v in self.sources.items()]
        return Bill(
            tot.circuits,
            sum(self.shots_of(c) for c in counts.values()),
            source,
            seconds,
            self.usd(counts),
            self.name,
            notes,
        )

    def seconds(self, counts: Mapping[Ansatz, Counts]) -> float | None:
        total = 0.0
        for a, c in counts.items():
            per_shot = self.circuit_seconds(a, 1)
            if per_shot is None:
                return None
            total += self.shots_of(c) * per_shot + c.circuits * self.circuit_overhead_s
        return total

    circuit_overhead_s = 0.0


class TimeBilled(Profile):
    """Billed per QPU second: shots × (``rep_delay_s`` + circuit duration) per circuit."""

    kind = "time"

    def __init__(
        self,
        name: str,
        provider: str,
        usd_per_second: float,
        rep_delay_s: float,
        gate_1q_s: float,
        gate_2q_s: float,
        measure_s: float,
        circuit_overhead_s: float = 0.0,
        assumed_shots: int = 1000,
        sources: Mapping | None = None,
    ) -> None:
        super().__init__(name, provider, assumed_shots, sources)
        self.usd_per_second = _positive(usd_per_second, "usd_per_second", name)
        self.rep_delay_s = _positive(rep_delay_s, "rep_delay_s", name)
        self.gate_1q_s = _positive(gate_1q_s, "gate_1q_s", name)
        self.gate_2q_s = _positive(gate_2q_s, "gate_2q_s", name)
        self.measure_s = _positive(measure_s, "measure_s", name)
        self.circuit_overhead_s = _positive(circuit_overhead_s, "circuit_overhead_s", name)
        self._durations: dict[Ansatz, float] = {}

    def circuit_seconds(self, ansatz: Ansatz, shots: int) -> float:
        d = self._durations.get(ansatz)
        if d is None:
            d = self._durations[ansatz] = circuit_duration_s(ansatz, self.gate_1q_s, self.gate_2q_s, self.measure_s)
        return shots * (self.rep_delay_s + d)

    def usd(self, counts: Mapping[Ansatz, Counts]) -> float:
        return float(self.seconds(counts) or 0.0) * self.usd_per_second


class ShotBilled(Profile):
    """Billed per task (one circuit) and per shot; ``seconds_per_shot`` only where published."""

    kind = "shot"

    def __init__(
        self,
        name: str,
        provider: str,
        usd_per_task: float,
        usd_per_shot: float,
        seconds_per_shot: float | None = None,
        assumed_shots: int = 1000,
        sources: Mapping | None = None,
    ) -> None:
        super().__init__(name, provider, assumed_shots, sources)
        self.usd_per_task = _positive(usd_per_task, "usd_per_task", name)
        self.usd_per_shot = _positive(usd_per_shot, "usd_per_shot", name)
        self.seconds_per_shot = (
            None if seconds_per_shot is None else _positive(seconds_per_shot, "seconds_per_shot", name)
        )

    def circuit_seconds(self, ansatz: Ansatz, shots: int) -> float | None:
        return None if self.seconds_per_shot is None else shots * self.seconds_per_shot

    def usd(self, counts: Mapping[Ansatz, Counts]) -> float:
        return sum(c.circuits * self.usd_per_task + self.shots_of(c) * self.usd_per_shot for c in counts.values())


def build_profile(spec: Mapping, choice: str = "?") -> Profile:
    """The profile of a ``conf/qpu`` mapping (``_target_`` one of this module's classes)."""
    from hydra.utils import instantiate

    target = spec.get("_target_") if hasattr(spec, "get") else None
    if target not in (f"{__name__}.TimeBilled", f"{__name__}.ShotBilled"):
        raise ConfigError(f"qpu={choice}: _target_ must be {__name__}.TimeBilled or .ShotBilled, got {target!r}")
    try:
        return instantiate(spec, _convert_="all")
    except Exception as exc:
        cur: BaseException = exc
        while cur.__cause__ is not None:
            cur = cur.__cause__
        if isinstance(cur, ConfigError):
            raise cur from None
        raise ConfigError(f"qpu={choice}: {str(cur).splitlines()[0] if str(cur) else type(cur).__name__}") from None


class BillMeter:
    """The bill of a set of quantum layers over a window: what they counted since :meth:`start`.

    Shared by the Lightning callback and the federated engine. Each layer counts its own
    executions (a copied layer starts from zero), so the sum over every layer that ran is the run's
    total without double counting.
    """

    def __init__(self, layers, profile: Profile | None) -> None:
        self.layers, self.profile = list(layers), profile
        self._start = self.snapshot()
        self.test_counts: dict = {}
        self.test_samples = 0

    def snapshot(self) -> dict:
        from hqexp.quantum.tally import merge

        return merge(q.tally.snapshot() for q in self.layers)

    def since(self, mark: dict) -> Counts:
        """Totals counted after ``mark`` (a :meth:`snapshot`)."""
        from hqexp.quantum.tally import difference

        return totals(difference(self.snapshot(), mark))

    def shots_of(self, c: Counts) -> int:
        return self.profile.shots_of(c) if self.profile is not None else c.shots

    def run_counts(self) -> dict:
        from hqexp.quantum.tally import difference

        return difference(self.snapshot(), self._start)

    def metrics(self) -> dict[str, float]:
        """``qpu/*`` of the window: totals, the test's circuits per classified sample, the estimate."""
        if not self.layers:
            return {}
        test = totals(self.test_counts) if self.test_counts else Counts()
        out: dict[str, float] = {"qpu/test_circuits": float(test.circuits)}
        if self.test_samples:
            out["qpu/circuits_per_inference"] = test.circuits / self.test_samples
        counts = self.run_counts()
        if self.profile is not None:
            out.update(self.profile.bill(counts).metrics())
        else:
            tot = totals(counts)
            out.update({"qpu/circuits": float(tot.circuits), "qpu/shots": float(tot.shots)})
        return out

    def tags(self) -> dict[str, str]:
        """``qpu.*``: the gradient rule, whether a device could produce these numbers, the estimate's sources."""
        if not self.layers:
            return {}
        backends = [q.backend for q in self.layers]
        grads = sorted({b.grad for b in backends})
        faithful = all(b.hardware_faithful for b in backends)
        out = {"qpu.grad": ",".join(grads), "qpu.hardware_faithful": str(faithful).lower()}
        if not faithful:
            out["qpu.grad"] += " (sampled forward, analytic gradient: not what a device computes)"
        if self.profile is not None:
            out.update(self.profile.bill(self.run_counts()).tags())
        return out
