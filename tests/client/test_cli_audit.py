"""``veil audit`` flags owner memos that do not open their commitments.

The chain cannot read memos, so it commits an issue whose owner memo lies (here it
carries the right key but another amount) beside an honest audit memo. The
regulator's audit memo discloses the owner memo's ephemeral key; with it and the
owner's registered memo key (read from ``/v1/accounts``) the audit opens the owner
memo and finds it does not open the output's commitment: a mismatch, with the tx
id and its signer. Before this check, the audit passed such a tx as clean."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ledger.build import OutputPlan, seal_outputs, sign_tx
from ledger.memo_binding import audit_opening, seal_owner_memo
from ledger.tx import IssueBody, TxOutput, output_id_of
from privacy.memo import seal_memo
from tests.api.chain_fixture import ApiChain
from tests.client.cli_helpers import veil, wallet_dir_of
from tests.client.served_node import ServedNode
from tests.spec.ledger_world import USD, World


def _issue_with_a_lying_owner_memo(world: World, nonce: int) -> tuple[bytes, bytes]:
    """Bank A issues 70 to bob; bob's owner memo says 71. (tx bytes, tx id)."""
    plan = OutputPlan(world.bob.key, world.bob.memo_public, 70)
    sealed = seal_outputs([plan], USD, world.auditor.memo_public)
    honest = sealed.openings[0]
    lie = dataclasses.replace(honest, value=honest.value + 1)
    owner_memo, secret = seal_owner_memo(lie, world.bob.memo_public)
    audit_memo = seal_memo(audit_opening(honest, secret), world.auditor.memo_public)
    output = sealed.outputs[0]
    body = IssueBody(
        world.bank_a.key,
        USD,
        70,
        (TxOutput(output.owner, output.commitment, owner_memo, audit_memo),),
        sealed.range_proof,
        nonce,
    )
    built = sign_tx(world.bank_a.identity, body, world.chain_id, excess_blinding=-honest.blinding)
    return built.encode(), built.tx_id


def test_audit_flags_an_owner_memo_that_does_not_open(
    served: ServedNode, api_chain: ApiChain, tmp_path: Path
) -> None:
    world = api_chain.world
    regulator = wallet_dir_of(world.auditor, tmp_path / "regulator")
    clean = json.loads(veil(served, "--json", "audit", "--wallet", str(regulator)).output)
    assert clean["mismatches"] == []
    raw, tx_id = _issue_with_a_lying_owner_memo(
        world, nonce=2
    )  # bank A's issue in block 1 used nonce 1
    served.submit_and_commit(raw)
    audited = veil(served, "--json", "audit", "--wallet", str(regulator))
    assert audited.exit_code == 0, audited.output
    report = json.loads(audited.output)
    assert report["mismatches"] == [
        {
            "tx_id": tx_id.hex(),
            "output_id": output_id_of(tx_id, 0).hex(),
            "reason": "OWNER_MEMO_MISMATCH",
            "signer": world.bank_a.key.hex(),
        }
    ]
    # The value exists (the audit memo opens it), so the totals still balance.
    usd = next(a for a in report["assets"] if a["asset"] == "USD.A")
    before = next(a for a in clean["assets"] if a["asset"] == "USD.A")
    assert before["balanced"]
    assert usd["balanced"] and usd["unspent_total"] == before["unspent_total"] + 70
    text = veil(served, "audit", "--wallet", str(regulator)).output
    assert f"mismatch tx {tx_id.hex()} signer {world.bank_a.key.hex()}: OWNER_MEMO_MISMATCH" in text
