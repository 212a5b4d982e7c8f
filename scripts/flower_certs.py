"""A local test certificate authority for a Flower federation over TLS (``make certs``).

Writes into ``--out`` (default ``certs/``, ignored by git):

* ``ca.crt`` / ``ca.key`` — a self-signed CA (keep ``ca.key`` on the machine that made it);
* ``server.pem`` / ``server.key`` — the SuperLink's certificate, signed by the CA, valid for
  ``localhost``, ``127.0.0.1`` and every ``--host`` given (the names clients dial);
* ``supernode_<k>`` / ``supernode_<k>.pub`` — an EC key pair per SuperNode (OpenSSH format, as
  ``ssh-keygen -t ecdsa -b 384`` makes them), for Flower's SuperNode authentication: the
  public key is registered on the SuperLink (``flwr supernode register``), the private key
  stays on the client machine.

For a real deployment use certificates from your organisation's CA; the layout is the same.
Private keys are written readable by their owner only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(subject: str, issuer: x509.Name | None, key, signer, days: int, sans=(), ca: bool = False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(signer, hashes.SHA256())


def _san(host: str):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make(out: Path, hosts: list[str], supernodes: int, days: int = 30) -> None:
    """The CA, the SuperLink's certificate and ``supernodes`` SuperNode key pairs, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _cert("hqexp test CA", None, ca_key, ca_key, days, ca=True)
    _write(out / "ca.key", _pem_key(ca_key), private=True)
    _write(out / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP384R1())
    names = list(dict.fromkeys(["localhost", "127.0.0.1", *hosts]))
    server = _cert(names[0], ca.subject, key, ca_key, days, sans=[_san(h) for h in names])
    _write(out / "server.key", _pem_key(key), private=True)
    _write(out / "server.pem", server.public_bytes(serialization.Encoding.PEM))
    for k in range(supernodes):
        node = ec.generate_private_key(ec.SECP384R1())
        ssh = node.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        _write(out / f"supernode_{k}", ssh, private=True)
        pub = node.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        _write(out / f"supernode_{k}.pub", pub + b"\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("certs"))
    p.add_argument("--host", action="append", default=[], help="a name or address clients dial (repeatable)")
    p.add_argument("--supernodes", type=int, default=2)
    p.add_argument("--days", type=int, default=30)
    a = p.parse_args(argv)
    make(a.out, a.host, a.supernodes, a.days)
    print(f"CA, SuperLink certificate and {a.supernodes} SuperNode key pair(s) in {a.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
