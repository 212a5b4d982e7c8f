"""Noise: channels, the ``noise`` config group as a model of the device, and the torch executor
that simulates it (:mod:`hqexp.quantum.noise.density`)."""

from hqexp.quantum.noise.model import NoiseModel, Step
from hqexp.quantum.noise.spec import KINDS, NoiseSpec

__all__ = ["KINDS", "NoiseModel", "NoiseSpec", "Step"]
