"""Signed model bundles (Ed25519).

The publisher signs the bundle's ``manifest.json`` bytes; the manifest holds the sha256 of
every other file, so the signature covers the whole bundle. The signature travels in the
bundle as ``signature.json``. Edges configured with trusted public keys
(``EDGE_TRUSTED_KEYS``) refuse — and NACK — a bundle that is unsigned, signed by a key they
do not trust, or whose signature or digests do not verify, whatever the control plane says.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sentiedge_core.bundle import MANIFEST
from sentiedge_core.errors import BundleError

SIGNATURE = "signature.json"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    """A public key as one line of base64 (what EDGE_TRUSTED_KEYS takes)."""
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def generate(private_path: Path) -> Ed25519PublicKey:
    """Write a new private key (PEM, mode 600) and ``<name>.pub`` beside it."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_path.chmod(0o600)
    private_path.with_suffix(".pub").write_text(public_text(key.public_key()) + "\n")
    return key.public_key()


def load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key")
    return key


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from base64 text, or from a file holding it."""
    text = text.strip()
    candidate = Path(text)
    if len(text) < 512 and candidate.is_file():
        text = candidate.read_text().strip()
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except Exception as exc:
        raise BundleError(f"not an Ed25519 public key (base64 of 32 bytes, or a file holding one): {text[:20]}…") \
            from exc


def trusted_keys(setting: str) -> list[Ed25519PublicKey]:
    return [parse_public(part) for part in setting.split(",") if part.strip()]


def sign(bundle: Path, private: Ed25519PrivateKey) -> str:
    manifest = (bundle / MANIFEST).read_bytes()
    public = private.public_key()
    body = {"algorithm": "ed25519", "key_id": key_id(public),
            "signature": base64.b64encode(private.sign(manifest)).decode()}
    (bundle / SIGNATURE).write_text(json.dumps(body, indent=2) + "\n")
    return body["key_id"]


def verify(bundle: Path, trusted: list[Ed25519PublicKey]) -> str:
    """The key id that signed the bundle; raises BundleError if it is not a trusted signature."""
    path = bundle / SIGNATURE
    if not path.is_file():
        raise BundleError(f"bundle is not signed ({SIGNATURE} missing) and this node only accepts signed bundles")
    try:
        body = json.loads(path.read_text())
        signature = base64.b64decode(body["signature"], validate=True)
        wanted = body["key_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{SIGNATURE} is malformed: {exc}") from exc
    keys = {key_id(k): k for k in trusted}
    if wanted not in keys:
        raise BundleError(f"bundle is signed by key {wanted}, which this node does not trust")
    try:
        keys[wanted].verify(signature, (bundle / MANIFEST).read_bytes())
    except InvalidSignature:
        raise BundleError("bundle signature does not verify: the manifest was altered after signing") from None
    return wanted
