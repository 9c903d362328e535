"""``veil loan`` against the served chain (tests/api's blocks, a thread playing consensus):
one lifecycle through the three-step origination, an accrual, a repayment, the proofs
and their verification by another bank, the regulator's loan audit, and one clear
error for every way a user can get a loan command wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import Result

from client.wallet_file import WalletDir
from ledger.build import sign_tx
from ledger.exposure import ExposureProof
from ledger.loan_build import LoanKeys, build_accrue, seal_loan_memos
from ledger.tx import LoanAccrueBody
from privacy import group
from privacy.memo import Opening
from tests.api.chain_fixture import ApiChain
from tests.client.cli_helpers import veil, wallet_dir_of
from tests.client.served_node import ServedNode

PRINCIPAL = 1_000_000
RATE_BPS = 500
INTEREST = PRINCIPAL * RATE_BPS // 10_000
REPAID = 300_000
OUTSTANDING = PRINCIPAL + INTEREST - REPAID


@dataclass
class Dirs:
    bank: Path
    firm: Path
    other_bank: Path
    bob: Path
    regulator: Path
    tmp: Path


@pytest.fixture
def dirs(api_chain: ApiChain, tmp_path: Path) -> Dirs:
    w = api_chain.world
    return Dirs(
        wallet_dir_of(w.bank_a, tmp_path / "bank"),
        wallet_dir_of(w.alice, tmp_path / "firm"),
        wallet_dir_of(w.bank_b, tmp_path / "bank-b"),
        wallet_dir_of(w.bob, tmp_path / "bob"),
        wallet_dir_of(w.auditor, tmp_path / "regulator"),
        tmp_path,
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def error(result: Result, *fragments: str) -> None:
    """Exit 1 with one ``Error:`` line naming the problem, and no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


def usage_error(result: Result, fragment: str) -> None:
    """Exit 2 (click's usage error) naming the bad option or argument."""
    assert result.exit_code == 2 and fragment in result.output, result.output


def as_firm(served: ServedNode, dirs: Dirs, command: str, *args: str | Path) -> Result:
    """``veil loan COMMAND --wallet FIRM ARGS...``: the firm (the borrower) acts."""
    return veil(served, "loan", command, "--wallet", dirs.firm, *args)


def repay(served: ServedNode, dirs: Dirs, loan_id: str, amount: int, *flags: str) -> Result:
    return as_firm(served, dirs, "repay", "--loan", loan_id, "--amount", str(amount), *flags)


def exposure_proof(served: ServedNode, dirs: Dirs, limit: int, out: Path, *flags: str) -> Result:
    """The firm proves its total owed is at most ``limit``."""
    return as_firm(served, dirs, "exposure-proof", "--limit", str(limit), "--out", out, *flags)


OFFER_TERMS: dict[str, int | str] = {
    "amount": PRINCIPAL,
    "rate_bps": RATE_BPS,
    "period_blocks": 1,
    "maturity_blocks": 100,
    "purpose": "working capital",
}


def credit_report(
    served: ServedNode, dirs: Dirs, limit: str, min_balance: str, out: Path
) -> Result:
    """The firm's credit report: owes at most ``limit``, holds at least ``min_balance``."""
    return as_firm(
        served, dirs, "credit-report", "--limit", limit, "--min-balance", min_balance, "--out", out
    )


def offer_command(
    served: ServedNode, wallet: Path, borrower: str, out: Path, **terms: int | str
) -> Result:
    """``veil loan offer`` by ``wallet`` to ``borrower`` (``OFFER_TERMS`` but for ``terms``),
    the signed offer written to ``out``."""
    flags = [(f"--{name.replace('_', '-')}", str(v)) for name, v in (OFFER_TERMS | terms).items()]
    words = [word for flag in flags for word in flag]
    return veil(
        served, "loan", "offer", "--wallet", wallet, "--borrower", borrower, *words, "--out", out
    )


def offer(
    served: ServedNode,
    dirs: Dirs,
    *,
    amount: int = PRINCIPAL,
    period_blocks: int = 1,
    name: str = "offer",
) -> Path:
    """Bank A's offer of ``amount`` at ``RATE_BPS`` to the firm."""
    borrower = WalletDir.open(dirs.firm, read_state=False).public_key.hex()
    out = dirs.tmp / f"{name}.json"
    ok(offer_command(served, dirs.bank, borrower, out, amount=amount, period_blocks=period_blocks))
    return out


def originate(served: ServedNode, dirs: Dirs, **kwargs: int) -> str:
    made = offer(served, dirs, **kwargs)
    accepted = dirs.tmp / "accepted.json"
    ok(veil(served, "loan", "accept", made, "--wallet", dirs.firm, "--out", accepted))
    out = ok(veil(served, "loan", "originate", accepted, "--wallet", dirs.bank, "--wait"))
    return out.strip().splitlines()[-1]


def test_a_loan_through_the_cli_and_its_proofs_checked_by_another_bank(
    served: ServedNode, auto_commit: None, dirs: Dirs, api_chain: ApiChain
) -> None:
    loan_id = originate(served, dirs)
    shown = json.loads(ok(veil(served, "--json", "loan", "show", loan_id)))
    assert shown["status"] == "active" and not shown["overdue"]
    assert shown["principal_commitment"] == shown["outstanding_commitment"]
    assert str(PRINCIPAL) not in json.dumps(shown)
    origination_height = shown["originated_height"]

    ok(veil(served, "loan", "accrue", "--wallet", dirs.bank, "--loan", loan_id, "--wait"))
    accrued_height = served.store.height()
    ok(repay(served, dirs, loan_id, REPAID, "--wait"))
    mine = json.loads(ok(veil(served, "--json", "loan", "show", loan_id, "--wallet", dirs.firm)))
    assert mine["outstanding"] == OUTSTANDING and mine["accrued_periods"] == 1
    listed = json.loads(
        ok(veil(served, "--json", "loan", "list", "--borrower", api_chain.world.alice.key.hex()))
    )
    assert [item["id"] for item in listed["loans"]] == [loan_id]

    # Firm X proves its exposure to bank B, which checks it against its node.
    proof = dirs.tmp / "proof.json"
    ok(exposure_proof(served, dirs, OUTSTANDING, proof))
    verdict = veil(served, "loan", "verify-exposure", proof)
    assert verdict.exit_code == 0, verdict.output
    assert verdict.output.startswith("VALID: ") and f"limit {OUTSTANDING:,}" in verdict.output

    # A limit below the true total cannot be proven.
    error(
        exposure_proof(served, dirs, OUTSTANDING - 1, dirs.tmp / "low.json"),
        "exceeds the limit",
    )
    # A proof whose limit is changed afterwards does not verify.
    document = json.loads(proof.read_text())
    made = ExposureProof.decode(bytes.fromhex(document["proof"]))
    document["proof"] = replace(made, limit=made.limit + 1).encode().hex()
    proof.write_text(json.dumps(document))
    forged = veil(served, "loan", "verify-exposure", proof)
    assert forged.exit_code == 1 and forged.output.startswith("INVALID: BAD_PROOF"), forged.output

    # A proof at a past height (after the accrual, before the repayment) still verifies.
    past = dirs.tmp / "past.json"
    ok(exposure_proof(served, dirs, PRINCIPAL + INTEREST, past, "--height", str(accrued_height)))
    assert ok(veil(served, "loan", "verify-exposure", past)).startswith("VALID: ")
    assert origination_height < accrued_height < served.store.height()

    report = dirs.tmp / "report.json"
    ok(credit_report(served, dirs, str(OUTSTANDING), "USD.A:100", report))
    checked = veil(served, "loan", "verify-report", report)
    assert checked.exit_code == 0 and "VALID: " in checked.output, checked.output
    assert "active" in checked.output

    audit = json.loads(ok(veil(served, "--json", "audit", "--wallet", dirs.regulator)))
    loans = audit["loans"]
    assert loans["by_lender"] == [
        {
            "lender": api_chain.world.bank_a.key.hex(),
            "asset": "USD.A",
            "outstanding_total": OUTSTANDING,
            "active_loans": 1,
        }
    ]
    assert loans["by_borrower"] == [
        {"borrower": api_chain.world.alice.key.hex(), "exposure": OUTSTANDING}
    ]
    assert loans["flags"] == []
    usd = next(a for a in audit["assets"] if a["asset"] == "USD.A")
    assert usd["balanced"], audit  # the loan txs' inputs are spent, their outputs counted

    error(
        veil(served, "loan", "close", "--wallet", dirs.firm, "--loan", loan_id),
        "still has",
        f"{OUTSTANDING:,}",
    )


def test_origination_refuses_every_wrong_step(
    served: ServedNode, auto_commit: None, dirs: Dirs, api_chain: ApiChain
) -> None:
    alice = api_chain.world.alice.key.hex()

    def tiny_offer(wallet: Path, borrower: str, rate_bps: int) -> Result:
        out = dirs.tmp / "x.json"
        return offer_command(
            served,
            wallet,
            borrower,
            out,
            amount=5,
            rate_bps=rate_bps,
            maturity_blocks=1,
            purpose="x",
        )

    error(
        tiny_offer(dirs.firm, api_chain.world.bob.key.hex(), 1),
        "not a bank",
    )
    too_long = tiny_offer(dirs.bank, alice, 10001)
    assert too_long.exit_code == 2 and "--rate-bps" in too_long.output
    made = offer(served, dirs)
    accepted = dirs.tmp / "accepted.json"
    error(
        veil(served, "loan", "accept", made, "--wallet", dirs.bob, "--out", accepted),
        "not this wallet",
    )
    document = json.loads(made.read_text())
    lying = dirs.tmp / "lying.json"
    lying.write_text(json.dumps({**document, "amount": PRINCIPAL + 1}))
    error(
        veil(served, "loan", "accept", lying, "--wallet", dirs.firm, "--out", accepted),
        "commits to",
    )
    garbage = dirs.tmp / "garbage.json"
    garbage.write_text("{")
    error(
        veil(served, "loan", "accept", garbage, "--wallet", dirs.firm, "--out", accepted),
        "not JSON",
    )
    ok(veil(served, "loan", "accept", made, "--wallet", dirs.firm, "--out", accepted))
    error(
        veil(served, "loan", "originate", accepted, "--wallet", dirs.other_bank),
        "not this bank's",
    )
    signed = json.loads(accepted.read_text())
    body = bytearray.fromhex(signed["body"])
    body[-1] ^= 1  # the consent signature's last byte
    forged = dirs.tmp / "forged.json"
    forged.write_text(json.dumps({**signed, "body": body.hex()}))
    error(veil(served, "loan", "originate", forged, "--wallet", dirs.bank), "BAD_CONSENT")
    for pending in (dirs.bank / "offers").iterdir():
        pending.rename(dirs.tmp / pending.name)
    error(
        veil(served, "loan", "originate", accepted, "--wallet", dirs.bank),
        "did not make this offer",
    )


def test_lifecycle_commands_refuse_what_the_chain_would_refuse(
    served: ServedNode, auto_commit: None, dirs: Dirs
) -> None:
    loan_id = originate(served, dirs, period_blocks=1000)
    error(
        repay(served, dirs, loan_id, PRINCIPAL + 1),
        "overpays",
    )
    error(
        repay(served, dirs, "00" * 32, 1),
        "not the borrower",
    )
    error(
        veil(served, "loan", "accrue", "--wallet", dirs.firm, "--loan", loan_id),
        "not the lender",
    )
    error(
        veil(served, "loan", "accrue", "--wallet", dirs.bank, "--loan", loan_id),
        "period 1",
        "ends at height",
    )
    error(veil(served, "loan", "show", "00" * 32), "LOAN_NOT_FOUND")
    usage_error(veil(served, "loan", "show", "12"), "ID must be 32 bytes")
    usage_error(veil(served, "loan", "list", "--borrower", "zz"), "--borrower is not hex")
    ok(repay(served, dirs, loan_id, PRINCIPAL, "--wait"))
    ok(veil(served, "loan", "close", "--wallet", dirs.firm, "--loan", loan_id, "--wait"))
    error(
        repay(served, dirs, loan_id, 1),
        "is closed",
    )
    assert json.loads(ok(veil(served, "--json", "loan", "show", loan_id)))["status"] == "closed"
    bad_format = credit_report(served, dirs, "0", "USD.A", dirs.tmp / "r.json")
    assert bad_format.exit_code == 2 and "ASSET:X" in bad_format.output


def test_verify_says_invalid_for_files_and_heights_it_cannot_check(
    served: ServedNode, dirs: Dirs, api_chain: ApiChain
) -> None:
    garbage = dirs.tmp / "garbage.json"
    garbage.write_text('{"kind": "veil-exposure-proof", "version": 1, "proof": "zz"}')
    for command in ("verify-exposure", "verify-report"):
        result = veil(served, "loan", command, garbage)
        assert result.exit_code == 1 and result.output.startswith("INVALID: MALFORMED"), (
            result.output
        )
    future = ExposureProof(api_chain.world.chain_id, api_chain.world.alice.key, 99, 5, (), b"")
    path = dirs.tmp / "future.json"
    path.write_text(
        json.dumps({"kind": "veil-exposure-proof", "version": 1, "proof": future.encode().hex()})
    )
    result = veil(served, "loan", "verify-exposure", path)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("INVALID: HEIGHT_NOT_RETAINED") and "height 99" in result.output


def test_the_firms_wallet_and_the_regulator_flag_an_interest_memo_that_lies(
    served: ServedNode, auto_commit: None, dirs: Dirs, api_chain: ApiChain
) -> None:
    """The chain proves C_I = ⌊v·rate/10 000⌋·G + r·H but cannot read the memos: a bank
    whose memos claim another interest is caught by the borrower's wallet (which
    recomputes I) and by the regulator, and the wallet survives a reopen with its flag."""
    w = api_chain.world
    loan_id = originate(served, dirs)
    ok(veil(served, "loan", "show", loan_id, "--wallet", dirs.bank))  # the bank's scan
    tracked = WalletDir.open(dirs.bank).loans.lender.loans[bytes.fromhex(loan_id)]
    assert tracked.outstanding is not None and tracked.outstanding.value == PRINCIPAL
    honest = build_accrue(
        w.bank_a.identity,
        w.chain_id,
        loan_id=bytes.fromhex(loan_id),
        period=1,
        rate_bps=RATE_BPS,
        outstanding=tracked.outstanding,
        keys=LoanKeys(w.bank_a.memo_public, w.alice.memo_public, w.auditor.memo_public),
    )
    body = LoanAccrueBody.decode(honest.built.tx.body)
    r_i = (honest.outstanding.blinding - tracked.outstanding.blinding) % group.ORDER
    lie = seal_loan_memos(
        Opening(INTEREST - 1, r_i, tracked.outstanding.asset),
        LoanKeys(w.bank_a.memo_public, w.alice.memo_public, w.auditor.memo_public),
    )
    lying = sign_tx(w.bank_a.identity, replace(body, memos=lie), w.chain_id)
    served.submit_and_commit(lying.encode())

    shown = veil(served, "--json", "loan", "show", loan_id, "--wallet", dirs.firm)
    assert shown.exit_code == 0, shown.output
    assert "BAD_INTEREST_MEMO" in shown.stderr and lying.tx_id.hex() in shown.stderr
    assert json.loads(shown.stdout)["outstanding"] is None  # unknown from the lie on
    reopened = WalletDir.open(dirs.firm)
    assert [f.reason for _, f in reopened.loans.flags()] == ["BAD_INTEREST_MEMO"]
    error(
        repay(served, dirs, loan_id, 1),
        "unknown to this wallet",
    )
    audit = json.loads(ok(veil(served, "--json", "audit", "--wallet", dirs.regulator)).strip())
    assert audit["loans"]["flags"] == [
        {"loan_id": loan_id, "tx_id": lying.tx_id.hex(), "reason": "BAD_INTEREST_MEMO"}
    ]
