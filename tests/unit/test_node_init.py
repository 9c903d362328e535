"""``veil node init``: the node.toml it writes is one ``veil node run`` accepts, and peer
links are TLS unless ``--allow-plain`` says otherwise (refused, in one line, if neither)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.genesis import save_genesis
from node.cli import node as node_cli
from node.main import load_identity, peer_link_config
from node.peer_config import PeerLinkConfig, PeerTlsFiles
from node.settings import load_node_settings
from node.tls import client_context, create_ca, issue_node_certificate, server_context
from tests.node_world import validator_identities
from tests.spec.ledger_world import World


@pytest.fixture
def chain(tmp_path: Path) -> tuple[list[str], PeerTlsFiles]:
    """``init``'s genesis, key and data options for validator 0, and its TLS files."""
    world = World()
    save_genesis(world.genesis, tmp_path / "genesis.json")
    validator_identities(world)[0].save(tmp_path / "v0.key")
    ca = create_ca(tmp_path / "tls")
    files = issue_node_certificate(ca, tmp_path / "tls", name="node0")
    args = ["--genesis", str(tmp_path / "genesis.json"), "--key", str(tmp_path / "v0.key")]
    return [*args, "--data", str(tmp_path / "data")], files


def _init(*args: str) -> Result:
    return CliRunner().invoke(node_cli, ["init", *args])


def _tls_args(files: PeerTlsFiles) -> list[str]:
    return [
        *("--tls-cert", str(files.cert_file)),
        *("--tls-key", str(files.key_file)),
        *("--tls-ca", str(files.ca_file)),
    ]


def _run_would_accept(config: Path) -> PeerLinkConfig:
    """What ``run`` does with node.toml before it opens the store: settings, key, peer links."""
    settings = load_node_settings(config)
    return peer_link_config(settings, load_identity(settings).genesis)


def test_init_with_tls_files_writes_a_config_that_run_accepts(
    tmp_path: Path, chain: tuple[list[str], PeerTlsFiles]
) -> None:
    args, files = chain
    result = _init(*args, *_tls_args(files))
    assert result.exit_code == 0, result.output
    links = _run_would_accept(tmp_path / "data" / "node.toml")
    assert links.tls == files and links.allow_plain is False
    server_context(files)
    client_context(files)


def test_init_with_allow_plain_writes_a_config_that_run_accepts(
    tmp_path: Path, chain: tuple[list[str], PeerTlsFiles]
) -> None:
    args, _ = chain
    result = _init(*args, "--allow-plain")
    assert result.exit_code == 0, result.output
    links = _run_would_accept(tmp_path / "data" / "node.toml")
    assert links.tls is None and links.allow_plain is True


def _refused(result: Result, problem: str) -> None:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], result.output
    assert "Traceback" not in result.output


def test_init_without_tls_or_allow_plain_is_refused_saying_what_to_give(
    tmp_path: Path, chain: tuple[list[str], PeerTlsFiles]
) -> None:
    args, _ = chain
    result = _init(*args)
    _refused(result, "give --tls-cert, --tls-key and --tls-ca")
    assert "--allow-plain" in result.output
    assert not (tmp_path / "data" / "node.toml").exists()


def test_init_refuses_partial_missing_or_mixed_link_options(
    tmp_path: Path, chain: tuple[list[str], PeerTlsFiles]
) -> None:
    args, files = chain
    _refused(_init(*args, "--tls-cert", str(files.cert_file)), "--tls-key, --tls-ca missing")
    missing = _tls_args(files)
    missing[1] = str(tmp_path / "nowhere.pem")
    _refused(_init(*args, *missing), "cannot read the peer TLS certificate")
    swapped = _tls_args(files)
    swapped[3] = str(files.ca_file.with_suffix(".key"))  # the CA's key, not the node's
    _refused(_init(*args, *swapped), "cannot load the peer TLS files")
    _refused(_init(*args, *_tls_args(files), "--allow-plain"), "or --allow-plain")
    assert not (tmp_path / "data" / "node.toml").exists()
