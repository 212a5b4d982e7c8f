"""hqexp — an experiment bench for hybrid quantum-classical neural networks."""

__version__ = "0.1.0"
