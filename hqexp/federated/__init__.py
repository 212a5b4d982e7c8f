"""Split and split-federated learning: clients, server, the channel and its ledger, engines.

``hqexp train federation=fl|sl|sflv1|sflv2|sl_ushaped`` (see :mod:`hqexp.train.federated`)
partitions the data across clients (:mod:`.partition`), cuts the model (:mod:`.parts`),
runs a protocol (:mod:`.protocols`) round by round in an engine (:mod:`.engine`), and
counts every byte that crosses in the ledger (:mod:`.channel`).
"""

from hqexp.federated.channel import Channel, Ledger, Transfer
from hqexp.federated.engine import Engine, Optimizers, StepDiagnostics
from hqexp.federated.partition import Partition, partition
from hqexp.federated.protocols import MODES, PROTOCOLS, Setup

__all__ = [
    "MODES",
    "PROTOCOLS",
    "Channel",
    "Engine",
    "Ledger",
    "Optimizers",
    "Partition",
    "Setup",
    "StepDiagnostics",
    "Transfer",
    "partition",
]
