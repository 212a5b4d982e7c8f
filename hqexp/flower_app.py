"""The Flower App that ``hqexp train … federation.engine=flower federation.flower.superlink=HOST:PORT``
submits to a SuperLink (Flower's Deployment Engine).

``server_app`` runs the whole ``hqexp train`` job — data, server sides, evaluation, the MLflow
record — in the ServerApp process the SuperLink starts, with the SuperLink's grid as the wire
to the clients; ``client_app`` is what every SuperNode runs for each message
(:func:`hqexp.train.flower.make_client_app`). The job's overrides travel in the run config
(``overrides``: base64 of a JSON list).
"""

from __future__ import annotations

import base64
import json

from flwr.serverapp import ServerApp

from hqexp.train.flower import attach_grid
from hqexp.train.flower_client import make_client_app

client_app = make_client_app()
server_app = ServerApp()


@server_app.main()
def _main(grid, context) -> None:
    import sys

    from hqexp import entrypoints, interrupts

    overrides = json.loads(base64.b64decode(str(context.run_config["overrides"])).decode())
    interrupts.install()
    attach_grid(grid)
    sys.argv = [sys.argv[0], *overrides]
    try:
        entrypoints.dispatch("train")
    except SystemExit as exc:  # Hydra's exit after a job: an error is already recorded and logged
        if exc.code not in (0, None):
            raise RuntimeError(f"hqexp train exited with {exc.code}") from None
    except KeyboardInterrupt as exc:  # `flwr stop`, or a signal to this process
        name, _ = interrupts.describe(exc)
        with interrupts.shielded():
            entrypoints.close_open_runs(f"interrupted by {name}")
        raise
