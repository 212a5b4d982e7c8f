"""``federation.engine=flower``: the protocols as a Flower ``ServerApp`` and ``ClientApp``.

The server keeps what the in-process engine's server keeps (the global model, the server
sides, the channel and its ledger, evaluation and the MLflow record); each client — a
Flower SuperNode, told its client number by ``node_config["partition-id"]`` — reads its
own part of the data and runs its side (:class:`~hqexp.federated.remote.ClientWorker`).
What crosses travels as Flower messages and is counted by the same channel, so the ledger
of a Flower run equals the in-process one byte for byte:

  fl       ``train.fl``           global weights ↓, the client's weights, losses and norms ↑
  sflv1/2  ``train.split_begin``  client weights ↓, the first batch's activations + labels ↑
           ``train.split_step``   the gradient at the cut ↓, the next batch's activations ↑
                                  (after its last batch: the client's weights ↑)

SFLV1 clients talk to the server at the same time (one message each per step); SFLV2
clients take turns through the one server model. Two runtimes: Flower's simulation engine
(``federation.flower.superlink: null``: virtual SuperNodes as Ray actors, on this machine)
and its Deployment Engine (a SuperLink and SuperNodes started by ``flower-superlink`` /
``flower-supernode``, anywhere; see :mod:`hqexp.train.flower_app`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from omegaconf import DictConfig

from hqexp.errors import ConfigError
from hqexp.federated.protocols import Protocol, Setup
from hqexp.train.flower_client import make_client_app
from hqexp.train.flower_server import PROTOCOLS, STOP, FlowerError, Link, run_conf

MODES = tuple(PROTOCOLS)


def check(fed, priv: dict, cfg: DictConfig) -> None:
    """One line for what the Flower engine does not run."""
    if fed.mode not in MODES:
        raise ConfigError(
            f"federation.engine=flower runs federation={'|'.join(MODES)}; {fed.mode} runs with "
            "federation.engine=inprocess"
        )
    if priv.get("nopeek_weight") or priv.get("noise_std") or (priv.get("dp") or {}).get("enabled"):
        raise ConfigError(
            "client-side defences (privacy.nopeek_weight, noise_std, dp) run with federation.engine=inprocess only"
        )
    if cfg.get("ckpt_path") is not None:
        raise ConfigError(
            "resuming (ckpt_path) runs with federation.engine=inprocess only: a Flower client's "
            "optimiser state lives on its SuperNode"
        )
    try:
        import flwr  # noqa: F401
    except ImportError as e:
        raise ConfigError("federation.engine=flower needs Flower: pip install 'hqexp[fed]'") from e


def simulate(n_clients: int, body: Callable[[object], dict], cpus_per_client: float) -> dict:
    """Run ``body(grid)`` as the ServerApp of a Flower simulation with ``n_clients`` virtual
    SuperNodes (Ray actors on this machine); its result, or its exception re-raised here."""
    import logging

    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    logging.getLogger("flwr").setLevel(logging.ERROR)  # a line per message otherwise
    out: dict = {}
    server = ServerApp()

    finished = threading.Event()

    @server.main()
    def _main(grid, context) -> None:
        try:
            out["value"] = body(grid)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
            out["error"] = e
        finally:
            finished.set()

    STOP.clear()
    try:
        run_simulation(
            server,
            make_client_app(),
            num_supernodes=n_clients,
            backend_config={
                "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
                "init_args": {"address": "local", "log_to_driver": False, "include_dashboard": False},
            },
        )
    except BaseException:
        # Ctrl-C / SIGTERM reach this (the main) thread; the server runs in Flower's, which
        # would otherwise keep the process alive waiting for clients Ray has stopped
        STOP.set()
        finished.wait(timeout=60)
        raise
    if "error" in out:
        raise out["error"]
    if "value" not in out:
        raise FlowerError("the Flower simulation ended without running the server")
    return out["value"]


_GRID: list = []  # the SuperLink's grid, inside the ServerApp process of a deployed run


def attach_grid(grid) -> None:
    """Called by the deployed ServerApp (:mod:`hqexp.flower_app`): train on this grid."""
    _GRID[:] = [grid]


def run(cfg: DictConfig, fed, setup: Setup, execute: Callable[[Protocol], dict]) -> dict:
    """The run on Flower: ``execute(protocol)`` as the ServerApp, the clients as SuperNodes —
    virtual ones here (simulation), or a SuperLink's (the job is submitted to it)."""
    opts = fed.flower

    def body(grid) -> dict:
        link = Link(grid, setup.n_clients, run_conf(cfg, setup.model_name), float(opts["timeout_s"]))
        return execute(PROTOCOLS[fed.mode](setup, link))

    if _GRID:  # this process is the deployed ServerApp
        import logging

        for name in ("httpx", "flwr"):  # a line per HTTP poll otherwise, streamed to the submitter
            logging.getLogger(name).setLevel(logging.WARNING)
        return body(_GRID[0])
    if opts["superlink"] is not None:
        return submit(cfg, opts)
    return simulate(setup.n_clients, body, float(opts["cpus_per_client"]))


APP_TOML = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "hqexp-flower"
version = "1.0.0"
description = "hqexp split / split-federated training on Flower"
license = "MIT"
dependencies = []

[tool.flwr.app]
publisher = "hqexp"

[tool.flwr.app.components]
serverapp = "hqexp.flower_app:server_app"
clientapp = "hqexp.flower_app:client_app"

[tool.flwr.app.config]
overrides = ""
"""


def flwr_config(superlink: str, flower: dict) -> str:
    """The ``flwr`` CLI's ``config.toml`` for the SuperLink: TLS (with ``root_certificates``, or the
    system's CAs) unless ``insecure``."""
    tls = "insecure = true" if flower.get("insecure") else ""
    if not flower.get("insecure") and flower.get("root_certificates"):
        tls = f'root-certificates = "{flower["root_certificates"]}"'
    return f'[superlink]\ndefault = "hqexp"\n\n[superlink.hqexp]\naddress = "{superlink}"\n{tls}\n'


def submit(cfg: DictConfig, flower: dict) -> dict:
    """Submit this job to the SuperLink at ``flower["superlink"]`` (its Control API, over TLS unless
    ``insecure``) with ``flwr run``, and stream its log here until it ends. The ServerApp process
    records the MLflow run."""
    import base64
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from hqexp.config import output_dir

    beside = Path(sys.executable).parent / "flwr"  # this environment's, activated or not
    flwr = str(beside) if beside.exists() else shutil.which("flwr")
    if flwr is None:
        raise ConfigError("federation.flower.superlink needs the `flwr` command: pip install 'hqexp[fed]'")
    here = output_dir()
    app, home = here / "flower_app", here / "flower_home"
    app.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (app / "pyproject.toml").write_text(APP_TOML)
    superlink = str(flower["superlink"])
    (home / "config.toml").write_text(flwr_config(superlink, flower))
    local = ("federation.flower.root_certificates=", "federation.flower.insecure=")  # this machine's link only
    overrides = [
        *(o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(local)),
        f"hydra.run.dir={here / 'server'}",
        f"mlflow.tracking_uri={cfg.mlflow.tracking_uri}",
    ]
    packed = base64.b64encode(json.dumps(overrides).encode()).decode()
    env = {**os.environ, "FLWR_HOME": str(home)}
    proc = subprocess.Popen(
        [flwr, "run", str(app), "hqexp", "--run-config", f'overrides="{packed}"', "--stream"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    run_id, finished, last, box = None, False, "no output", []
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            run_id = run_id or _run_id(line)
            finished = finished or line.startswith("hqexp train (")
            text = line.strip()
            if text.startswith("│"):  # flwr's errors come in a box: keep its words, not its border
                box.append(text.strip("│ "))
            elif text.startswith("╰") and box:
                last, box = " ".join(box), []
            elif text and not text.startswith(("╭", "╰")):
                last = text
        proc.wait()
    except BaseException:
        proc.kill()
        if run_id is not None:  # the job goes on on the SuperLink unless stopped
            subprocess.run([flwr, "stop", run_id, "hqexp"], env=env, capture_output=True, timeout=60)
            print(f"hqexp: stopped Flower run {run_id} on {superlink}", file=sys.stderr)
        raise
    if proc.returncode != 0 or not finished:
        if "unavailable" in last.lower():  # TLS on one side only, or the wrong CA, reads the same
            last += (
                " (over plain HTTP: federation.flower.insecure=true; a SuperLink with TLS needs that off)"
                if flower.get("insecure")
                else " (over TLS: federation.flower.root_certificates must be the CA of the SuperLink's certificate; "
                "federation.flower.insecure=true for a SuperLink started --insecure)"
            )
        raise FlowerError(f"the run on SuperLink {superlink} did not finish: {last}")
    return {}


def _run_id(line: str) -> str | None:
    """Flower's run id out of a line of ``flwr run`` (``… run_id `123` …`` / ``… run 123 …``)."""
    import re

    m = re.search(r"run(?:_id| ID)?[ :`]+(\d{6,})", line)
    return m.group(1) if m else None
