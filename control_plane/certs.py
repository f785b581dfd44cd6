"""A development certificate authority for mTLS between edges and the control plane.

``control-plane certs init DIR`` makes ``ca.key``/``ca.crt`` and the control plane's server
certificate (``control-plane.crt``, valid for localhost, 127.0.0.1 and any ``--host``);
``control-plane certs issue NODE_ID`` makes ``NODE_ID.key``/``NODE_ID.crt``, a client
certificate whose common name is the node id: the control plane refuses a Sync whose Hello
names another node. Operators get certificates the same way (their name as the id).
Production deployments bring their own CA; these files are the same shape.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from control_plane.errors import InvalidArgument

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SERVER = "control-plane"


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _load(directory: Path):
    try:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    except FileNotFoundError:
        raise InvalidArgument(f"no CA in {directory}: run control-plane certs init {directory}") from None
    return key, cert


def init(directory: Path, hosts: list[str], days: int = 3650) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "ca.key").exists():
        raise InvalidArgument(f"{directory} already holds a CA; not overwriting it")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sentiedge development CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(directory / "ca.key", key)
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issue(directory, SERVER, server_hosts=["localhost", "127.0.0.1", *hosts])


def issue(directory: Path, identity: str, *, server_hosts: list[str] | None = None, days: int = 825) -> Path:
    """A certificate for a node or operator (client) or, with ``server_hosts``, the server."""
    if not NAME.match(identity):
        raise InvalidArgument(f"{identity!r}: an id is 1-63 letters, digits, '.', '_' or '-'")
    ca_key, ca_cert = _load(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(identity)]
    for host in server_hosts or []:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server_hosts else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(directory / f"{identity}.key", key)
    path = directory / f"{identity}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
