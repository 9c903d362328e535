"""``veil node run`` start-up refusals, in process: one line on stdout, exit status 2 and
no traceback, for key and TLS files that are missing, unreadable or do not fit together.
(``tests/integration/test_node_run.py`` runs the other refusals on a real process.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import node.main
from ledger.genesis import save_genesis
from node.main import EXIT_STARTUP_FAILED, main
from node.settings import ApiSection, NodeSection, NodeSettings, PeerSection, render_node_toml
from node.tls import create_ca, issue_node_certificate
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
