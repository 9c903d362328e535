"""``veil node run`` start-up, in process: one line on stdout, exit status 2 and no
traceback for key and TLS files that are missing, unreadable or do not fit together
(``tests/integration/test_node_run.py`` runs the other refusals on a real process);
and the API served over HTTPS by the code path ``run_node`` uses."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

import node.main
from ledger.genesis import save_genesis
from node.api import create_app
from node.main import EXIT_STARTUP_FAILED, api_ssl_context, main, start_api
from node.settings import ApiSection, NodeSection, NodeSettings, PeerSection, render_node_toml
from node.tls import create_ca, issue_node_certificate
from tests.api.in_process_node import InProcessNode
from tests.node_world import validator_identities
from tests.spec.ledger_world import World


@pytest.fixture(autouse=True)
def _keep_test_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # run_node re-points the "veil" loggers at stderr, which would outlive this test.
    monkeypatch.setattr(node.main, "configure_logging", lambda **_: None)


@pytest.fixture
def base(tmp_path: Path) -> NodeSettings:
    """Validator 0 of a fresh chain, with free ports and a CA-signed certificate."""
    world = World()
    save_genesis(world.genesis, tmp_path / "genesis.json")
    validator_identities(world)[0].save(tmp_path / "v0.key")
    ca = create_ca(tmp_path / "tls")
    files = issue_node_certificate(ca, tmp_path / "tls", name="node0")
    return NodeSettings(
        node=NodeSection("genesis.json", "v0.key", "data"),
        api=ApiSection(port=0),
        peer=PeerSection(
            listen_port=0,
            tls_cert=str(files.cert_file),
            tls_key=str(files.key_file),
            tls_ca=str(files.ca_file),
        ),
        base_dir=tmp_path,
    )


def _refused(settings: NodeSettings, capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``main`` printed for node.toml made of ``settings``."""
    config = settings.base_dir / "node.toml"
    config.write_text(render_node_toml(settings), encoding="utf-8")
    assert main(config) == EXIT_STARTUP_FAILED
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil node: "), out
    assert "Traceback" not in err
    return lines[0]


def _with_peer(settings: NodeSettings, **changes: str) -> NodeSettings:
    peer = settings.peer
    fields = {"tls_cert": peer.tls_cert, "tls_key": peer.tls_key, "tls_ca": peer.tls_ca}
    return NodeSettings(
        node=settings.node,
        api=settings.api,
        peer=PeerSection(listen_port=0, **(fields | changes)),
        base_dir=settings.base_dir,
    )


def test_a_key_path_that_is_a_directory_is_one_line(
    base: NodeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    (base.base_dir / "key-dir").mkdir(mode=0o700)
    settings = NodeSettings(
        node=NodeSection("genesis.json", "key-dir", "data"), base_dir=base.base_dir
    )
    line = _refused(settings, capsys)
    assert "cannot use key file" in line and "not a regular file" in line


@pytest.mark.parametrize(
    ("option", "path", "problem"),
    [
        ("tls_cert", "tls/missing.pem", "cannot read the peer TLS certificate"),
        ("tls_key", "tls", "cannot read the peer TLS key"),
        ("tls_ca", "tls/missing-ca.pem", "cannot read the peer TLS CA"),
        ("tls_key", "tls/ca.key", "cannot load the peer TLS files"),  # not the cert's key
    ],
)
def test_missing_unreadable_or_mismatched_peer_tls_files_are_one_line(
    base: NodeSettings,
    capsys: pytest.CaptureFixture[str],
    option: str,
    path: str,
    problem: str,
) -> None:
    line = _refused(_with_peer(base, **{option: str(base.base_dir / path)}), capsys)
    assert problem in line
    if problem.startswith("cannot read"):
        assert path in line


def test_peer_tls_paths_must_be_set_together(
    base: NodeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(_with_peer(base, tls_ca=""), capsys)
    assert "tls_cert, tls_key and tls_ca must be set together" in line


def _with_api_tls(settings: NodeSettings, cert: str, key: str) -> NodeSettings:
    return NodeSettings(
        node=settings.node,
        api=ApiSection(port=0, tls_cert=cert, tls_key=key),
        peer=settings.peer,
        base_dir=settings.base_dir,
    )


@pytest.mark.parametrize(
    ("cert", "key", "problem"),
    [
        ("tls/missing.pem", "tls/node0.key", "cannot read the API TLS certificate"),
        ("tls/node0.pem", "tls/missing.key", "cannot read the API TLS key"),
        ("tls/node0.pem", "tls/ca.key", "cannot load the API TLS files"),
    ],
)
def test_missing_or_mismatched_api_tls_files_are_one_line(
    base: NodeSettings, capsys: pytest.CaptureFixture[str], cert: str, key: str, problem: str
) -> None:
    line = _refused(_with_api_tls(base, cert, key), capsys)
    assert problem in line
    # Refused before the data directory is touched.
    assert not (base.base_dir / "data").exists()


async def test_the_api_serves_https_with_its_certificate_and_not_plain_http(
    base: NodeSettings,
) -> None:
    tls = base.base_dir / "tls"
    settings = _with_api_tls(base, str(tls / "node0.pem"), str(tls / "node0.key"))
    context = api_ssl_context(settings)
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    world = World()
    runner = await start_api(create_app(InProcessNode(world, world.new_store())), settings, context)
    try:
        port = runner.addresses[0][1]
        trusting = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{port}/v1/status"
            async with session.get(url, ssl=trusting) as answer:
                assert answer.status == 200
                assert (await answer.json())["height"] == 0
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(url)  # without the CA the certificate is not trusted
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{port}/v1/status")
    finally:
        await runner.cleanup()


def test_without_api_tls_files_the_api_stays_plain_http(base: NodeSettings) -> None:
    assert api_ssl_context(base) is None
