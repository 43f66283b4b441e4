"""Signed evidence: the lab's Ed25519 key signs each run's ``manifest.json``.

The manifest (:mod:`reports.manifest`) holds the SHA-256 of every file of the run folder;
``manifest.sig`` holds an Ed25519 signature over the manifest's exact bytes, with the
public key and its fingerprint. Changing any file changes its hash, so the manifest no
longer matches; changing the manifest breaks the signature. The report prints the key's
fingerprint, so a reader can tell which lab key vouches for it.

Key pair: ``$BMSRIG_KEY_DIR`` or ``~/.config/bmsrig``: ``signing_key.pem`` (PKCS#8,
unencrypted, mode 0600, created on first use) and ``signing_key.pub.pem``. A lab that
wants its runs checked against its own key passes ``--pubkey`` to ``bmsrig verify``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .runfolder import write_json_atomic

SIG_FILE = "manifest.sig"
SIGNED_FILE = "manifest.json"
FORMAT = "bmsrig-signature/1"
KEY_FILE = "signing_key.pem"
PUB_FILE = "signing_key.pub.pem"


def key_dir(path: str | Path | None = None) -> Path:
    """The key folder: ``path``, else ``$BMSRIG_KEY_DIR``, else ``~/.config/bmsrig``."""
    if path:
        return Path(path)
    env = os.environ.get("BMSRIG_KEY_DIR")
    return Path(env) if env else Path.home() / ".config" / "bmsrig"


def _raw_public(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key) -> str:
    """``SHA256:<hex>`` of the raw 32-byte public key (64 hex digits)."""
    return "SHA256:" + hashlib.sha256(_raw_public(public_key)).hexdigest()


@dataclass(frozen=True)
class Signer:
    """The lab's key pair, loaded: ``private_key`` (Ed25519), its ``fingerprint`` and files."""

    private_key: object
    fingerprint: str
    key_file: Path
    created: bool

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_or_create_key(path: str | Path | None = None) -> Signer:
    """The lab's signing key from the key folder, generated there on first use (private key
    mode 0600, folder 0700). Raises :class:`ConfigError` naming the file when it cannot be
    read, written or parsed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = key_dir(path)
    key_file = folder / KEY_FILE
    created = False
    try:
        if key_file.is_file():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(key_file, "private key", "not an Ed25519 key")
        else:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            created = True
        signer = Signer(key, fingerprint(key.public_key()), key_file, created)
        pub = folder / PUB_FILE
        if not pub.is_file():
            pub.write_text(signer.public_pem(), encoding="ascii")
    except OSError as exc:
        raise ConfigError(exc.filename or key_file, "signing key", f"cannot read or create it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(key_file, "signing key", f"not a readable PEM private key: {exc}") from None
    return signer


def sign_manifest(run_dir: str | Path, signer: Signer) -> Path:
    """Write ``manifest.sig`` over ``run_dir/manifest.json``; returns its path."""
    run_dir = Path(run_dir)
    data = (run_dir / SIGNED_FILE).read_bytes()
    doc = {
        "format": FORMAT,
        "algorithm": "Ed25519",
        "signed_file": SIGNED_FILE,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "public_key": base64.b64encode(_raw_public(signer.private_key.public_key())).decode("ascii"),
        "fingerprint": signer.fingerprint,
        "signature": base64.b64encode(signer.private_key.sign(data)).decode("ascii"),
    }
    return write_json_atomic(run_dir / SIG_FILE, doc)


def load_public_key(path: str | Path):
    """An Ed25519 public key from a PEM file (``signing_key.pub.pem``); ConfigError otherwise."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(path, "--pubkey", f"cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(path, "--pubkey", f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(path, "--pubkey", "not an Ed25519 public key")
    return key


def verify_signature(run_dir: str | Path, trusted_public_key=None) -> tuple[list[str], str | None]:
    """Check ``manifest.sig`` against ``manifest.json``: (problems, signer fingerprint).

    With ``trusted_public_key`` the signature must also come from that key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    run_dir = Path(run_dir)
    try:
        doc = json.loads((run_dir / SIG_FILE).read_text(encoding="utf-8"))
        raw_key = base64.b64decode(doc["public_key"], validate=True)
        sig = base64.b64decode(doc["signature"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except FileNotFoundError:
        return [f"{SIG_FILE}: missing: the run is not signed"], None
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{SIG_FILE}: unreadable ({type(exc).__name__}: {exc})"], None
    fp = fingerprint(public)
    problems = []
    if doc.get("fingerprint") != fp:
        problems.append(f"{SIG_FILE}: the fingerprint it states does not match its public key")
    if trusted_public_key is not None and fingerprint(trusted_public_key) != fp:
        problems.append(f"{SIG_FILE}: signed by key {fp}, not by the trusted key {fingerprint(trusted_public_key)}")
    try:
        data = (run_dir / SIGNED_FILE).read_bytes()
    except FileNotFoundError:
        return problems + [f"{SIGNED_FILE}: missing"], fp
    try:
        public.verify(sig, data)
    except InvalidSignature:
        problems.append(f"{SIGNED_FILE}: the signature in {SIG_FILE} does not match: the manifest was changed "
                        "after it was signed")
    return problems, fp
