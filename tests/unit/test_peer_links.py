"""Peer-link settings, the reconnect back-off, the devnet CA, and the outbound queue."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from node.peer_config import (
    QUARANTINE_MAX_MS,
    PeerLinkConfig,
    PeerTlsFiles,
    backoff_delay_ms,
    quarantine_ms,
    split_endpoint,
)
from node.peer_frames import ConsensusFrame, TxFrame
from node.tls import (
    TlsFileError,
    certificate_der,
    client_context,
    create_ca,
    issue_node_certificate,
    server_context,
)
from node.transport import _OutboundQueue


def config(**overrides: object) -> PeerLinkConfig:
    settings: dict[str, object] = {
        "listen_host": "127.0.0.1",
        "listen_port": 7001,
        "peer_endpoints": ("127.0.0.1:7001", "127.0.0.1:7002", "", "[::1]:7004"),
        "tls": PeerTlsFiles(Path("a.pem"), Path("a.key"), Path("ca.pem")),
    }
    settings.update(overrides)
    return PeerLinkConfig(**settings)  # type: ignore[arg-type]


def test_backoff_doubles_to_the_cap_with_half_of_it_jittered() -> None:
    delays = [backoff_delay_ms(n, initial_ms=100, max_ms=5_000, draw=0.0) for n in range(8)]
    assert delays == [50, 100, 200, 400, 800, 1600, 2500, 2500]
    assert backoff_delay_ms(3, initial_ms=100, max_ms=5_000, draw=0.999) == pytest.approx(799.6)
    # A huge failure count neither overflows nor exceeds the cap.
    assert backoff_delay_ms(10_000, initial_ms=100, max_ms=5_000, draw=0.5) == 3750


def test_endpoints_are_host_and_port() -> None:
    assert split_endpoint("10.0.0.7:7001") == ("10.0.0.7", 7001)
    assert split_endpoint("[::1]:7004") == ("::1", 7004)
    for bad in ("10.0.0.7", ":7001", "host:", "host:0", "host:65536", "host:7x"):
        assert split_endpoint(bad) is None, bad


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tls": None}, "allow_plain"),
        ({"listen_port": 70_000}, "not a port"),
        ({"peer_endpoints": ("nonsense",)}, "host:port"),
        ({"max_frame_bytes": 100}, "handshake frame"),
        ({"queue_max_frames": 0}, "positive"),
        ({"queue_max_bytes": 1024}, "one maximal frame"),
        ({"reconnect_initial_ms": 0}, "reconnect"),
        ({"reconnect_initial_ms": 9_000}, "reconnect"),
        ({"handshake_timeout_ms": 0}, "positive"),
        ({"dial_grace_ms": -1}, "negative"),
        ({"max_pending_handshakes": 0}, "positive"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_plain_links_are_allowed_only_when_asked_for() -> None:
    assert config(tls=None, allow_plain=True).tls is None


def test_ca_and_node_certificates(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca")
    files = issue_node_certificate(
        ca,
        tmp_path / "certs",
        name="node0",
        ip_addresses=("127.0.0.1", "10.1.2.3"),
        dns_names=("node0.bank.example",),
    )
    for key in (ca.key_file, files.key_file):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_der_x509_certificate(certificate_der(files.cert_file))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.1.2.3"),
    ]
    assert names.get_values_for_type(x509.DNSName) == ["node0.bank.example"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # Both contexts load, and demand a peer certificate.
    assert server_context(files).verify_mode.name == "CERT_REQUIRED"
    assert client_context(files).check_hostname


def test_keys_and_certificates_are_never_overwritten(tmp_path: Path) -> None:
    ca = create_ca(tmp_path)
    issue_node_certificate(ca, tmp_path, name="node0")
    with pytest.raises(TlsFileError, match="refusing to overwrite"):
        issue_node_certificate(ca, tmp_path, name="node0")
    with pytest.raises(TlsFileError, match="refusing to overwrite"):
        create_ca(tmp_path)


def test_unreadable_tls_files_give_a_reason(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsFileError, match="no PEM certificate"):
        certificate_der(tmp_path / "junk.pem")
    missing = PeerTlsFiles(tmp_path / "x.pem", tmp_path / "x.key", tmp_path / "ca.pem")
    with pytest.raises(TlsFileError, match=r"cannot read the peer TLS certificate .*x\.pem"):
        server_context(missing)


async def test_outbound_queue_drops_the_oldest_when_full_in_count_or_bytes() -> None:
    queue = _OutboundQueue(max_frames=3, max_bytes=10_000)
    dropped = [queue.push(TxFrame(bytes([i]))) for i in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    assert [queue.pop() for _ in range(4)] == [
        TxFrame(b"\x02"),
        TxFrame(b"\x03"),
        TxFrame(b"\x04"),
        None,
    ]
    assert queue.queued_bytes == 0 and not queue.ready.is_set()
    by_bytes = _OutboundQueue(max_frames=100, max_bytes=3_000)
    by_bytes.push(ConsensusFrame(b"a" * 1_000))
    by_bytes.push(ConsensusFrame(b"b" * 1_000))
    assert by_bytes.push(ConsensusFrame(b"c" * 1_000)) == 1
    assert len(by_bytes) == 2 and by_bytes.queued_bytes <= 3_000


async def test_an_item_put_back_goes_out_first() -> None:
    queue = _OutboundQueue(max_frames=3, max_bytes=10_000)
    queue.push(TxFrame(b"b"))
    item = queue.pop()
    assert item is not None
    queue.push(TxFrame(b"c"))
    queue.push_front(item)
    assert [queue.pop(), queue.pop(), queue.pop()] == [TxFrame(b"b"), TxFrame(b"c"), None]


def test_quarantine_doubles_from_a_second_to_five_minutes() -> None:
    assert [quarantine_ms(n) for n in range(1, 6)] == [1_000, 2_000, 4_000, 8_000, 16_000]
    assert quarantine_ms(9) == 256_000
    assert quarantine_ms(10) == quarantine_ms(10_000) == QUARANTINE_MAX_MS == 300_000
    with pytest.raises(ValueError, match="at least 1"):
        quarantine_ms(0)
