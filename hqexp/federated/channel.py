"""The one door between clients and server: every tensor that crosses the cut, and every
model that is synchronised, goes through :class:`Channel`, which records its size in the
:class:`Ledger` — measured as ``numel × element_size``, never estimated.

Directions: ``up`` (client → server), ``down`` (server → client). Kinds: ``activations``
(smashed data), ``labels``, ``gradients`` (of the activations), ``server_activations`` and
``server_gradients`` (the U-shaped return path), ``client_model`` and ``model`` (weights
for synchronisation). ``up``/``down`` totals count the per-batch traffic; ``sync`` totals
the model transfers in both directions.

A link of ``link_mbps`` with ``latency_ms`` turns bytes into simulated transfer time:
``latency + 8·bytes / link``, per transfer. Privacy measures subscribe with :meth:`tap`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

BATCH_KINDS = ("activations", "labels", "gradients", "server_activations", "server_gradients")
SYNC_KINDS = ("client_model", "model")
KINDS = BATCH_KINDS + SYNC_KINDS


@dataclass(frozen=True)
class Transfer:
    round: int
    client: int
    direction: str  # up | down
    kind: str
    nbytes: int
    seconds: float  # simulated link time


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes on the wire of one tensor: ``numel × element_size``."""
    return t.numel() * t.element_size()


def state_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes of a model state (every tensor of a ``state_dict``)."""
    return sum(tensor_bytes(t) for t in state.values())


class Ledger:
    """Every transfer, in order; totals by round, client, direction and kind."""

    def __init__(self) -> None:
        self.transfers: list[Transfer] = []

    def add(self, t: Transfer) -> None:
        self.transfers.append(t)

    def bytes(
        self,
        *,
        round: int | None = None,
        client: int | None = None,
        direction: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> int:
        """Total bytes of the transfers matching every given filter."""
        ks = set(kinds) if kinds is not None else None
        return sum(
            t.nbytes
            for t in self.transfers
            if (round is None or t.round == round)
            and (client is None or t.client == client)
            and (direction is None or t.direction == direction)
            and (ks is None or t.kind in ks)
        )

    def totals(self, round: int | None = None) -> dict[str, int]:
        """``up`` / ``down`` (per-batch traffic), ``sync`` (model transfers) and ``total``."""
        up = self.bytes(round=round, direction="up", kinds=BATCH_KINDS)
        down = self.bytes(round=round, direction="down", kinds=BATCH_KINDS)
        sync = self.bytes(round=round, kinds=SYNC_KINDS)
        return {"up": up, "down": down, "sync": sync, "total": up + down + sync}

    def by_kind(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = defaultdict(int)
        for t in self.transfers:
            out[(t.direction, t.kind)] += t.nbytes
        return dict(out)

    def link_seconds(self, round: int, sequential: bool) -> float:
        """Simulated transfer time of ``round``: each client's own link; clients one after
        another (``sequential``) add up, clients at the same time take the longest."""
        per: dict[int, float] = defaultdict(float)
        for t in self.transfers:
            if t.round == round:
                per[t.client] += t.seconds
        if not per:
            return 0.0
        return sum(per.values()) if sequential else max(per.values())

    def rows(self) -> list[dict]:
        """Per round, client, direction and kind: bytes and simulated seconds (for a CSV)."""
        agg: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0])
        for t in self.transfers:
            a = agg[(t.round, t.client, t.direction, t.kind)]
            a[0] += t.nbytes
            a[1] += t.seconds
            a[2] += 1
        return [
            {"round": r, "client": c, "direction": d, "kind": k, "bytes": b, "seconds": s, "messages": n}
            for (r, c, d, k), (b, s, n) in sorted(agg.items())
        ]


Tap = Callable[[str, torch.Tensor, int, str], None]


class Channel:
    """Counts what crosses between client ``k`` and the server, and passes it on.

    :meth:`send` returns what the receiver gets: a detached copy of a tensor (the receiver
    builds its own graph from it), or the state dict as given.
    """

    def __init__(self, ledger: Ledger, link_mbps: float = 100.0, latency_ms: float = 5.0) -> None:
        if not link_mbps > 0 or latency_ms < 0:
            raise ValueError(f"federation.link_mbps must be > 0 and latency_ms >= 0, got {link_mbps}, {latency_ms}")
        self.ledger, self.link_mbps, self.latency_ms = ledger, float(link_mbps), float(latency_ms)
        self.round = 0
        self._taps: list[Tap] = []

    def tap(self, fn: Tap) -> None:
        """Call ``fn(kind, tensor, client, direction)`` on every tensor that crosses."""
        self._taps.append(fn)

    def _record(self, client: int, direction: str, kind: str, nbytes: int) -> None:
        if kind not in KINDS or direction not in ("up", "down"):  # pragma: no cover - a programming error
            raise ValueError(f"unknown transfer {direction}/{kind}")
        seconds = self.latency_ms / 1e3 + 8.0 * nbytes / (self.link_mbps * 1e6)
        self.ledger.add(Transfer(self.round, client, direction, kind, nbytes, seconds))

    def send(self, tensor: torch.Tensor, *, client: int, direction: str, kind: str) -> torch.Tensor:
        """One tensor across the cut; the receiver gets it detached."""
        self._record(client, direction, kind, tensor_bytes(tensor))
        out = tensor.detach()
        for fn in self._taps:
            fn(kind, out, client, direction)
        return out

    def send_state(
        self, state: Mapping[str, torch.Tensor], *, client: int, direction: str, kind: str = "client_model"
    ) -> Mapping[str, torch.Tensor]:
        """A model's weights across (synchronisation)."""
        self._record(client, direction, kind, state_bytes(state))
        return state
