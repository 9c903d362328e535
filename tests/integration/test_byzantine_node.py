"""A byzantine validator process (``--byzantine all``, issue 12) against three honest ones:
it equivocates as primary, sends conflicting votes, floods junk batches and censors
bank B. The honest nodes change view, keep committing (bank B's txs too), count the
faults in /metrics and agree on every block."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ledger.build import build_attest
from tests.integration.node_processes import (
    ROOT,
    api_url,
    block_hashes,
    http_json,
    metric_values,
    start_node,
    stop,
    submit,
    wait_healthy,
    write_network,
)
from tests.spec.ledger_world import World

RUN_S = 25.0
FINAL = ("committed", "rejected")


def test_byzantine_flag_is_refused_without_the_test_variable(tmp_path: Path) -> None:
    configs = write_network(tmp_path, World())
    result = subprocess.run(
        [sys.executable, "-m", "node", "run", "--config", str(configs[0]), "--byzantine", "all"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refused unless VEIL_BYZANTINE_TEST=1" in result.stdout


def test_unknown_byzantine_kind_is_refused(tmp_path: Path) -> None:
    configs = write_network(tmp_path, World())
    result = subprocess.run(
        [sys.executable, "-m", "node", "run", "--config", str(configs[0]), "--byzantine", "nap"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "VEIL_BYZANTINE_TEST": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown kind ['nap']" in result.stdout


def _status(url: str) -> dict[str, object]:
    return http_json(f"{url}/v1/status")[1]


def _tx_state(url: str, tx_id: str) -> str:
    status, body = http_json(f"{url}/v1/txs/{tx_id}")
    return str(body.get("status")) if status == 200 else f"http {status}"


def test_honest_nodes_survive_a_byzantine_primary(tmp_path: Path) -> None:
    world = World()
    configs = write_network(tmp_path, world)
    urls = [api_url(c) for c in configs]
    logs = [tmp_path / f"n{i}.log" for i in range(4)]
    attack = ("--byzantine", "all", "--censor-signer", world.bank_b.key.hex())
    processes = [
        start_node(configs[0], logs[0], attack, {"VEIL_BYZANTINE_TEST": "1"}),
        *(start_node(c, log) for c, log in zip(configs[1:], logs[1:], strict=True)),
    ]
    honest = urls[1:]
    sent: dict[str, str] = {}  # tx id -> signer
    try:
        for url in urls:
            wait_healthy(url)
        deadline = time.monotonic() + RUN_S
        nonce = 0
        while time.monotonic() < deadline:
            nonce += 1
            for party, name in ((world.bank_a, "a"), (world.bank_b, "b")):
                digest = nonce.to_bytes(32, "big")
                tx = build_attest(party.identity, world.chain_id, "chaos", digest, nonce=nonce)
                # Half go to the byzantine node too: it must not be able to hide them.
                code, _ = submit(urls[nonce % 4], tx.encode())
                if code == 202:
                    sent[tx.tx_id.hex()] = name
            time.sleep(0.2)
        settle = time.monotonic() + 60
        while time.monotonic() < settle:
            pending = [t for t in sent if _tx_state(honest[0], t) not in FINAL]
            if not pending:
                break
            time.sleep(1)
        states = {t: [_tx_state(url, t) for url in honest] for t in sent}
        views = [int(str(_status(url)["view"])) for url in honest]
        faults = [metric_values(url, "veil_faults_total") for url in honest]
        view_changes = [metric_values(url, "veil_view_changes_total")[""] for url in honest]
        heights = [int(str(_status(url)["height"])) for url in honest]
        chains = [block_hashes(url, range(1, min(heights) + 1)) for url in honest]
    finally:
        codes = [stop(p) for p in processes]
    byzantine_log = logs[0].read_text()
    assert "BYZANTINE TEST NODE" in byzantine_log
    assert {"b", "a"} <= set(sent.values()), "nothing was submitted"
    # Every acknowledged tx reached the same final status on every honest node: committed,
    # or rejected as a replay when a higher nonce of its bank, sent to another node, was
    # ordered first. Bank B's txs, which the attacker censors, are committed like bank A's.
    unsettled = {t: s for t, s in states.items() if s[0] not in FINAL or len(set(s)) != 1}
    assert not unsettled, list(unsettled.items())[:5]
    for bank in ("a", "b"):
        mine = [t for t, signer in sent.items() if signer == bank]
        committed = [t for t in mine if states[t][0] == "committed"]
        assert len(committed) >= 0.8 * len(mine), (bank, len(committed), len(mine))
    # The honest nodes left the attacker's views.
    assert min(views) >= 1 and min(view_changes) >= 1, (views, view_changes)
    # They counted the lies (a peer fault counter for each kind of lie it recognises).
    seen = set().union(*(set(f) for f in faults))
    assert any("equivocation" in k for k in seen), faults
    assert any("conflicting_vote" in k for k in seen), faults
    # No fork: the same block at every height on every honest node.
    assert min(heights) >= 2
    assert chains[0] == chains[1] == chains[2]
    assert codes[1:] == [0, 0, 0], [log.read_text()[-2000:] for log in logs[1:]]
    injected = byzantine_log.split("byzantine test node injected:")[-1]
    for kind in ("equivocate", "conflicting-votes", "junk", "censor"):
        assert f"'{kind}'" in injected, injected[:500]
