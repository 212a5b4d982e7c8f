"""Finite shots: what a device returns instead of exact expectation values.

A device measures every qubit in the Z basis ``N`` times; each shot is one bitstring drawn from
the circuit's output distribution. :func:`sample_counts` draws the ``N`` shots of every circuit
of a batch at once, as counts per basis state (a multinomial draw), and :meth:`ShotSampler.estimate`
computes every output of the measurement from those same counts (``z_each``, ``z0z1`` and the
projectors alike), as one Z-basis readout gives them.

The multinomial draw is a binary tree of binomial draws, one level per qubit: the shots of each
prefix of the bitstring split between its two continuations with the conditional probability
of the next bit. That is ``n`` batched ``torch.binomial`` calls whatever ``N`` is (a draw per shot
would cost ``B·N``), exact in distribution, and reproducible from the sampler's own generator.
"""

from __future__ import annotations

import torch

from hqexp.errors import ConfigError


def check_shots(shots: object, where: str) -> int | None:
    """``shots`` as an int >= 1 or None; one line naming ``where`` otherwise."""
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(f"{where}: shots must be a positive int (shots per circuit) or null (exact), got {shots!r}")
    return shots


def sample_counts(probs: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Counts ``[B, 2**n]`` (float64, each row summing to ``shots``) of ``shots`` draws from each
    row of ``probs`` ``[B, 2**n]`` (wire 0 the most significant bit)."""
    B, dim = probs.shape
    n = dim.bit_length() - 1
    p = probs.detach().to(torch.float64).clamp_min(0)
    p = p / p.sum(-1, keepdim=True)
    # marginals of every prefix, finest first: level[l] is [B, 2**l]
    levels = [p]
    for _ in range(n):
        levels.append(levels[-1].view(B, -1, 2).sum(-1))
    levels.reverse()
    counts = torch.full((B, 1), float(shots), dtype=torch.float64, device=p.device)
    for level in range(n):
        child = levels[level + 1].view(B, -1, 2)
        parent = levels[level]
        # P(next bit = 0 | prefix); a prefix of probability 0 holds no shots, so its split is moot
        q0 = torch.where(parent > 0, child[..., 0] / parent.clamp_min(1e-300), torch.zeros_like(parent))
        zeros = torch.binomial(counts, q0.clamp(0, 1), generator=generator)
        counts = torch.stack([zeros, counts - zeros], dim=-1).view(B, -1)
    return counts


class ShotSampler:
    """Draws the shots of every circuit from one seeded generator (``seed`` None: exact values)."""

    def __init__(self, shots: int | None, seed: int | None, where: str = "backend") -> None:
        self.shots = check_shots(shots, where)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}
        # A run seeds torch's global generator (Lightning's seed_everything) before it builds the
        # model: drawing this sampler's seed from it makes every layer's shot stream different and
        # the run reproducible; an explicit seed fixes it outright.
        # (exact runs draw nothing: their random stream stays what it was before shots existed)
        self.seed_value = int(seed) if seed is not None else (int(torch.randint(0, 2**62, (1,))) if shots else 0)

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """This sampler's generator on ``device`` (one per device, each seeded with ``seed_value``)."""
        key = str(torch.device(device))
        gen = self._generators.get(key)
        if gen is None:
            gen = self._generators[key] = torch.Generator(device=key)
            gen.manual_seed(self.seed_value)
        return gen

    @property
    def exact(self) -> bool:
        return self.shots is None

    def frequencies(self, probs: torch.Tensor) -> torch.Tensor:
        """Shot frequencies (counts / shots) of each row of ``probs``, in ``probs``' dtype and device;
        the probabilities themselves when exact."""
        if self.shots is None:
            return probs
        counts = sample_counts(probs, self.shots, self.generator(probs.device))
        return (counts / self.shots).to(dtype=probs.dtype)

    def estimate(self, ansatz, probs: torch.Tensor) -> torch.Tensor:
        """Every output of ``ansatz``'s measurement ``[B, n_out]`` from one set of shots per row."""
        return ansatz.observable.from_probs(self.frequencies(probs), ansatz.n_qubits)
