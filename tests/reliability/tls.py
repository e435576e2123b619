"""TLS server contexts for 127.0.0.1: a self-signed certificate, and a CA of the test's own
with a valid and an expired server certificate (made with ``cryptography``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    days: tuple[int, int],
    ca: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _context(folder: Path, name: str, cert: x509.Certificate, key) -> ssl.SSLContext:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def self_signed(folder: Path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _context(folder, "self", _certificate("127.0.0.1", key, None, (-1, 30)), key)


def ca_signed(folder: Path) -> tuple[Path, ssl.SSLContext, ssl.SSLContext]:
    """(CA certificate file, context with a valid leaf, context with an expired leaf)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("runreview test CA", ca_key, None, (-30, 30), ca=True)
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    issuer = (ca_cert.subject, ca_key)
    contexts = []
    for name, days in (("valid", (-1, 30)), ("expired", (-20, -10))):
        key = ec.generate_private_key(ec.SECP256R1())
        contexts.append(_context(folder, name, _certificate("127.0.0.1", key, issuer, days), key))
    return ca_path, contexts[0], contexts[1]
