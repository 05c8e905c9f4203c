"""Per-cluster TLS credentials on elliptic-curve keys.

dask-gateway makes a self-signed certificate for every new cluster with a 2048-bit RSA
key, generated inside the request that creates the cluster: 0.2-1 s of CPU on a busy
machine, blocking the gateway's event loop. A P-256 key (stronger than RSA-2048) takes
about a millisecond. Same certificate contents otherwise (names, validity).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dask_gateway_server.backends import db_base


def new_keypair(sni: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for a cluster; `sni` is its name, as the proxy routes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dask-internal")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(sni), x509.DNSName("dask-internal")]),
            critical=False,
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def use_ec_keys() -> None:
    """Make dask-gateway's cluster database issue EC credentials (it looks the function
    up in its module when it creates a cluster; dask-gateway-server is pinned)."""
    db_base.new_keypair = new_keypair
