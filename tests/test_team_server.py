"""The team's tracking server with logins (``make server AUTH=1``): a real ``mlflow server
--app-name basic-auth``; a sweep with a user's credentials lands, wrong or missing credentials
are one line within ``mlflow.connect_timeout_s``, and a server that would be open to the
network without logins does not start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import TINY, error_line, free_port, hqexp, wait_until_up

from hqexp.tracking.server import ServerSetupError, command

ADMIN_PASSWORD = "admin-password-for-the-test-1"
ALICE = ("alice", "alices-password-for-the-test-2")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth_server")
    port = free_port()
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hqexp.tracking.server", "--dir", str(tmp), "--port", str(port), "--auth"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(uri, proc)
        yield uri, tmp
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _as(monkeypatch, user: str | None, password: str | None) -> None:
    for key, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


def test_a_user_sweeps_onto_the_authenticated_server_and_strangers_are_turned_away(tmp_path, auth_server, monkeypatch):
    from mlflow.server.auth.client import AuthServiceClient
    from mlflow.tracking import MlflowClient

    uri, store_dir = auth_server
    assert (store_dir / "auth.db").exists() and "password" not in (store_dir / "basic_auth.ini").read_text()
    _as(monkeypatch, "admin", ADMIN_PASSWORD)
    AuthServiceClient(uri).create_user(*ALICE)

    _as(monkeypatch, *ALICE)
    sweep = ["sweep", "seed=1,2", "model=mlp_classifier", "dataset=iris", *TINY, f"mlflow.tracking_uri={uri}"]
    hqexp([*sweep, "mlflow.experiment_name=alice"], tmp_path)
    c = MlflowClient(uri)
    found = c.search_runs([c.get_experiment_by_name("alice").experiment_id])
    (parent,) = [r for r in found if r.data.tags["hqexp.command"] == "sweep"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(r.info.status == "FINISHED" for r in children)
    exp_id = c.get_experiment_by_name("alice").experiment_id

    train = ["train", "model=mlp_classifier", "dataset=iris", *TINY, f"mlflow.tracking_uri={uri}"]
    for user, password, said in [
        (ALICE[0], "not-her-password", "refused user 'alice' and this password (HTTP 401)"),
        (None, None, "refused no credentials (HTTP 401)"),
    ]:
        _as(monkeypatch, user, password)
        t0 = time.monotonic()
        out = hqexp([*train, "mlflow.connect_timeout_s=5"], tmp_path, check=False)
        took = time.monotonic() - t0
        assert out.returncode == 2 and said in error_line(out), out.stderr[-1500:]
        assert "MLFLOW_TRACKING_PASSWORD" in error_line(out)
        print(f"refused in {took:.1f} s (process start included)")
    _as(monkeypatch, "admin", ADMIN_PASSWORD)  # nothing of the refused runs reached the store
    assert len(MlflowClient(uri).search_runs([exp_id])) == 3


def test_a_server_open_to_the_network_needs_logins_and_a_new_one_its_admin(tmp_path):
    with pytest.raises(ServerSetupError, match="HOST=0.0.0.0 without AUTH=1"):
        command(tmp_path, "sqlite:///x.db", "0.0.0.0", 5000, auth=False, env={})
    cmd, _ = command(tmp_path, "sqlite:///x.db", "0.0.0.0", 5000, auth=False, open_network=True, env={})
    assert "--app-name" not in cmd
    command(tmp_path, "sqlite:///x.db", "127.0.0.1", 5000, auth=False, env={})  # loopback: a personal server
    with pytest.raises(ServerSetupError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        command(tmp_path, "sqlite:///x.db", "0.0.0.0", 5000, auth=True, env={})
    with pytest.raises(ServerSetupError, match="AUTH_DEFAULT_PERMISSION"):
        command(
            tmp_path,
            "s",
            "::1",
            5000,
            auth=True,
            default_permission="ALL",
            env={"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cr3t-pw"},
        )
    cmd, env = command(tmp_path, "s", "0.0.0.0", 5000, auth=True, env={"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cr3t-pw"})
    assert cmd[cmd.index("--app-name") + 1] == "basic-auth"
    ini = open(env["MLFLOW_AUTH_CONFIG_PATH"]).read()
    assert f"sqlite:///{(tmp_path / 'auth.db').resolve()}" in ini and "s3cr3t-pw" not in ini
    out = subprocess.run(
        [sys.executable, "-m", "hqexp.tracking.server", "--dir", str(tmp_path), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "AUTH=1" in out.stderr
