"""TLS for peer links (and the HTTPS API): a consortium CA, per-node certificates,
and SSL contexts.

The devnet and the tests make a CA here and issue each node a certificate
for its IP addresses (and DNS names), usable as both TLS server and client
(``veil node init`` only checks the files it is given and names them):
peer links are mutual TLS, and each side's certificate enters the ed25519
handshake's channel binding (``node.peer_protocol.tls_channel_binding``).
Keys are ECDSA P-256, written PEM (PKCS#8) with mode 0600 and never
overwritten, like the signing keys in ``ledger.identity``.

A bank in production may use its own consortium CA instead; the node only
needs the three files named in ``PeerTlsFiles``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.peer_config import PeerTlsFiles

CA_VALID_DAYS = 3650
NODE_VALID_DAYS = 825


class TlsFileError(Exception):
    """A certificate or key file is missing, unreadable, or would be overwritten."""


@dataclass(frozen=True, slots=True)
class CaFiles:
    cert_file: Path
    key_file: Path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise TlsFileError(f"{path} already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, 0o600)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def create_ca(
    directory: Path, *, name: str = "Veil consortium CA", valid_days: int = CA_VALID_DAYS
) -> CaFiles:
    """Write ``ca.pem`` and ``ca.key`` (0600) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CaFiles(directory / "ca.pem", directory / "ca.key")
    _write_key(files.key_file, key)
    _write_new(files.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _load_ca(ca: CaFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
        key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise TlsFileError(f"cannot read the CA files: {type(exc).__name__}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsFileError("the CA key is not an ECDSA key")
    return cert, key


def issue_node_certificate(
    ca: CaFiles,
    directory: Path,
    *,
    name: str,
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    dns_names: Sequence[str] = (),
    valid_days: int = NODE_VALID_DAYS,
) -> PeerTlsFiles:
    """Write ``<name>.pem`` and ``<name>.key`` (0600) for a node, signed by ``ca``."""
    if not ip_addresses and not dns_names:
        raise ValueError("a node certificate needs at least one IP address or DNS name")
    ca_cert, ca_key = _load_ca(ca)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    names += [x509.DNSName(d) for d in dns_names]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = PeerTlsFiles(directory / f"{name}.pem", directory / f"{name}.key", ca.cert_file)
    _write_key(files.key_file, key)
    _write_new(files.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def certificate_der(cert_file: Path) -> bytes:
    """The DER bytes of the first certificate in a PEM file (our side of the binding)."""
    try:
        text = cert_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise TlsFileError(f"{cert_file}: unreadable ({type(exc).__name__})") from None
    end = text.find(ssl.PEM_FOOTER)
    if end < 0:
        raise TlsFileError(f"{cert_file}: no PEM certificate")
    try:
        return ssl.PEM_cert_to_DER_cert(text[: end + len(ssl.PEM_FOOTER)])
    except ValueError:
        raise TlsFileError(f"{cert_file}: malformed PEM certificate") from None


def check_readable(files: dict[str, Path]) -> None:
    """Raise ``TlsFileError`` naming the first file (by its role) that cannot be opened.

    Why: ``ssl`` does not name the file it failed on (a missing CA file is just
    "No such file or directory"), and the operator has to know which one to fix.
    """
    for role, path in files.items():
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise TlsFileError(f"cannot read the {role} {path}: {reason}") from None


def _context(purpose: ssl.Purpose, files: PeerTlsFiles) -> ssl.SSLContext:
    check_readable(
        {
            "peer TLS certificate": files.cert_file,
            "peer TLS key": files.key_file,
            "peer TLS CA": files.ca_file,
        }
    )
    try:
        context = ssl.create_default_context(purpose, cafile=str(files.ca_file))
        context.load_cert_chain(str(files.cert_file), str(files.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"cannot load the peer TLS files: {exc}") from None
    # Every peer is ours: no reason to speak anything older than TLS 1.3.
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def api_server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """HTTPS for the API: present our certificate, ask clients for none.

    Clients are the bank's own applications and tools, which may not speak TLS
    1.3 yet, hence 1.2 as the floor; who may call is the reverse proxy's or the
    network's decision, as with plain HTTP.
    """
    check_readable({"API TLS certificate": cert_file, "API TLS key": key_file})
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"cannot load the API TLS files: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context(files: PeerTlsFiles) -> ssl.SSLContext:
    """Listener side: present our certificate, demand one signed by the CA."""
    return _context(ssl.Purpose.CLIENT_AUTH, files)


def client_context(files: PeerTlsFiles) -> ssl.SSLContext:
    """Dialer side: check the listener's certificate and its IP/name, present ours."""
    context = _context(ssl.Purpose.SERVER_AUTH, files)
    context.check_hostname = True
    return context
