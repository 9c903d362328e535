"""Issue 11 end to end on a real devnet (4 node processes): the demo's loan steps, then
the same story through the ``veil loan`` CLI: banks 0 and 1 lend to firm X in three
steps each, bank 0 accrues, X repays bank 1, X proves its exposure and bank 2 checks
it against node 2, a limit below the truth is refused, the credit report verifies on
node 2, and the regulator's audit totals the loans."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from client.cli import cli
from tests.integration.test_devnet import _status, devnet, free_base_port

PRINCIPALS = {0: 3_000_000, 1: 2_000_000}
RATE_BPS = 200
REPAID = 500_000


def veil(url: str, *args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["--node", url, *map(str, args)], catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def _lend(urls: list[str], root: Path, bank: int, firm_pk: str, tmp: Path) -> str:
    bank_dir, firm_dir = root / f"banks/bank{bank}", root / "clients/firm-x"
    symbol = f"USD.B{bank}"
    bank_pk = json.loads(ok(veil(urls[0], "--json", "wallet", "show", "--wallet", bank_dir)))[
        "public_key"
    ]
    balance = json.loads(ok(veil(urls[0], "--json", "wallet", "balance", "--wallet", bank_dir)))
    if sum(row["amount"] for row in balance if row["asset"] == symbol) < PRINCIPALS[bank]:
        ok(
            veil(
                urls[0],
                "bank",
                "issue",
                "--wallet",
                bank_dir,
                "--to",
                bank_pk,
                "--amount",
                str(2 * PRINCIPALS[bank]),
                "--wait",
            )
        )
    offer, accepted = tmp / f"offer{bank}.json", tmp / f"accepted{bank}.json"
    ok(
        veil(
            urls[0],
            "loan",
            "offer",
            "--wallet",
            bank_dir,
            "--borrower",
            firm_pk,
            "--amount",
            str(PRINCIPALS[bank]),
            "--rate-bps",
            str(RATE_BPS),
            "--period-blocks",
            "1",
            "--maturity-blocks",
            "1000",
            "--purpose",
            "inventory",
            "--out",
            offer,
        )
    )
    ok(veil(urls[0], "loan", "accept", offer, "--wallet", firm_dir, "--out", accepted))
    return ok(veil(urls[0], "loan", "originate", accepted, "--wallet", bank_dir, "--wait")).split()[
        -1
    ]


def test_loans_on_a_devnet_through_the_demo_and_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    base = free_base_port()
    started = devnet("up", "--dir", str(root), "--base-port", str(base), "--no-demo")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        urls = [str(r["url"]) for r in _status(root)]
        demo = devnet("demo", "--dir", str(root))
        assert demo.returncode == 0, demo.stdout + demo.stderr
        for heading in ("lend to firm X", "accrual and one repayment", "credit report"):
            assert heading in demo.stdout, demo.stdout
        assert "VALID" in demo.stdout and "no proof exists" in demo.stdout

        firm_dir = root / "clients/firm-x"
        firm_pk = json.loads(ok(veil(urls[0], "--json", "wallet", "show", "--wallet", firm_dir)))[
            "public_key"
        ]
        loans = {bank: _lend(urls, root, bank, firm_pk, tmp_path) for bank in PRINCIPALS}
        ok(
            veil(
                urls[0],
                "loan",
                "accrue",
                "--wallet",
                root / "banks/bank0",
                "--loan",
                loans[0],
                "--wait",
            )
        )
        repaid = json.loads(
            ok(
                veil(
                    urls[0],
                    "--json",
                    "loan",
                    "repay",
                    "--wallet",
                    firm_dir,
                    "--loan",
                    loans[1],
                    "--amount",
                    str(REPAID),
                    "--wait",
                )
            )
        )
        for url in urls:  # every node has the repayment before any is asked about it
            ok(veil(url, "tx", "wait", repaid["tx_id"]))
        listed = json.loads(ok(veil(urls[2], "--json", "loan", "list", "--borrower", firm_pk)))
        assert {loans[0], loans[1]} <= {item["id"] for item in listed["loans"]}
        assert all(item["status"] == "active" for item in listed["loans"])

        total = 0
        for item in listed["loans"]:
            shown = json.loads(
                ok(veil(urls[0], "--json", "loan", "show", item["id"], "--wallet", firm_dir))
            )
            total += shown["outstanding"]
        mine = PRINCIPALS[0] + PRINCIPALS[0] * RATE_BPS // 10_000 + PRINCIPALS[1] - REPAID
        assert total >= mine  # the demo's loans are firm X's too
        proof = tmp_path / "proof.json"
        ok(
            veil(
                urls[0],
                "loan",
                "exposure-proof",
                "--wallet",
                firm_dir,
                "--limit",
                str(total),
                "--out",
                proof,
            )
        )
        checked = veil(urls[2], "loan", "verify-exposure", proof)
        assert checked.exit_code == 0 and checked.output.startswith("VALID"), checked.output
        low = veil(
            urls[0],
            "loan",
            "exposure-proof",
            "--wallet",
            firm_dir,
            "--limit",
            str(total - 1),
            "--out",
            tmp_path / "low.json",
        )
        assert low.exit_code == 1 and "exceeds the limit" in low.output, low.output

        report = tmp_path / "report.json"
        ok(
            veil(
                urls[0],
                "loan",
                "credit-report",
                "--wallet",
                firm_dir,
                "--limit",
                str(total),
                "--min-balance",
                "USD.B0:1000",
                "--out",
                report,
            )
        )
        verified = veil(urls[2], "loan", "verify-report", report)
        assert verified.exit_code == 0 and "VALID" in verified.output, verified.output

        audit = json.loads(ok(veil(urls[0], "--json", "audit", "--wallet", root / "regulator")))
        exposure = {row["borrower"]: row["exposure"] for row in audit["loans"]["by_borrower"]}
        assert exposure[firm_pk] == total and audit["loans"]["flags"] == []
        assert all(a["balanced"] for a in audit["assets"]), audit["assets"]
    finally:
        down = devnet("down", "--dir", str(root), "--purge")
    assert down.returncode == 0, down.stderr
