"""A team's MLflow tracking server (``make server``): the store, the artifacts, and — with
``AUTH=1`` — MLflow's own basic-auth app in front of them.

With authentication every request needs a user and password; users and per-experiment
permissions are MLflow's (``mlflow.server.auth``: the admin creates users, whoever creates an
experiment manages it, everyone else gets ``default_permission``). The admin account is
created on the first start from ``MLFLOW_AUTH_ADMIN_PASSWORD`` (MLflow's variable; never a file
in the repository); later starts reuse the user database beside the store. Clients log in with
MLflow's standard ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.

A server on a non-loopback address without authentication would serve every run, parameter
and patient-derived artifact to anyone on the network: it is refused unless ``open_network``
says that is meant (``make server HOST=0.0.0.0 OPEN=1``).

Run as ``python -m hqexp.tracking.server --dir DIR --host H --port P [--auth] [--open-network]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


class ServerSetupError(ValueError):
    """A server that would start insecure or without its admin: one line, exit 2."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def write_auth_config(server_dir: Path, default_permission: str) -> Path:
    """The basic-auth app's settings (no secrets in it): its user database beside the store."""
    if default_permission not in PERMISSIONS:
        raise ServerSetupError(f"AUTH_DEFAULT_PERMISSION must be one of {', '.join(PERMISSIONS)}")
    path = server_dir / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = sqlite:///{(server_dir / 'auth.db').resolve()}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


def flask_secret(server_dir: Path) -> str:
    """The key the auth app signs its CSRF tokens with: made once per server, readable by its owner
    only (``MLFLOW_FLASK_SERVER_SECRET_KEY`` overrides it, as several servers behind one name need)."""
    import secrets

    path = server_dir / "flask_secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def command(
    server_dir: Path,
    store: str,
    host: str,
    port: int,
    auth: bool,
    open_network: bool = False,
    default_permission: str = "READ",
    env: dict | None = None,
) -> tuple[list[str], dict]:
    """The ``mlflow server`` command line and environment, after the checks."""
    env = dict(os.environ if env is None else env)
    if not auth and not _loopback(host) and not open_network:
        raise ServerSetupError(
            f"HOST={host} without AUTH=1 would serve every run and artifact to anyone on the network: "
            "add AUTH=1 (logins), or OPEN=1 if this network is trusted"
        )
    server_dir.mkdir(parents=True, exist_ok=True)
    (server_dir / "artifacts").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    cmd += ["--artifacts-destination", str(server_dir / "artifacts"), "--serve-artifacts"]
    cmd += ["--host", host, "--port", str(port)]
    if auth:
        if not (server_dir / "auth.db").exists() and not env.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
            raise ServerSetupError(
                "AUTH=1 on a new server needs the admin's password: export MLFLOW_AUTH_ADMIN_PASSWORD=… "
                "(the admin user is created from it on this first start)"
            )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(server_dir, default_permission))
        env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", flask_secret(server_dir))
        cmd += ["--app-name", "basic-auth"]
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hqexp.tracking.server", description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--store", default=None, help="backend store URI (default: SQLite in --dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--auth", action="store_true")
    p.add_argument("--open-network", action="store_true")
    p.add_argument("--default-permission", default="READ")
    a = p.parse_args(argv)
    store = a.store or f"sqlite:///{(a.dir / 'mlflow.db').resolve()}"
    try:
        cmd, env = command(a.dir, store, a.host, a.port, a.auth, a.open_network, a.default_permission)
    except ServerSetupError as exc:
        print(f"make server: error: {exc}", file=sys.stderr)
        return 2
    print(f"MLflow tracking server on http://{a.host}:{a.port} ({'logins required' if a.auth else 'no login'})")
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
