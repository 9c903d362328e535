"""Setting up a load run on a devnet: senders registered and funded, txs pre-generated.

Everything goes through the devnet's bank keys (``DEVNET_DIR/banks/bankN``):
bank i registers its share of fresh sender accounts and funds each with one
issue output of its own asset, submitted to node i and waited for. Then the
txs of the run are made (``devnet.load.txs``) and put in lanes
(``devnet.load.drive``): one per bank for attests, one per sender for
transfers.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from client.api_types import ChainInfo
from client.sdk import Client, RetryPolicy, VeilApiError
from devnet.load.drive import Lane
from devnet.load.txs import (
    ChainJob,
    Coin,
    IssueJob,
    PreparedTx,
    Sender,
    attest_txs,
    build_chains,
    build_issues,
    funding_jobs,
    new_senders,
    register_txs,
)
from devnet.network import Devnet, open_devnet
from ledger.identity import SigningIdentity

KINDS = ("attest", "transfer", "mixed")
SETUP_COMMIT_TIMEOUT_S = 120.0
PROGRESS_LINE_EVERY_S = 15.0
"""Without a terminal, how often the proving step prints how far it got."""


class LoadSetupError(Exception):
    """The devnet cannot be loaded (down, or a setup tx refused); one line says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """The devnet as the generator sees it."""

    devnet: Devnet
    urls: tuple[str, ...]
    chain: ChainInfo
    bank_keys: tuple[Path, ...]

    @property
    def pids(self) -> list[int | None]:
        return [self.devnet.pid(i) for i in range(self.devnet.nodes)]


def open_target(devnet_dir: Path) -> Target:
    # Without its genesis, open_devnet would fall back to the default ports, and the
    # load would go to whichever devnet listens there.
    if not (devnet_dir / "genesis.json").is_file():
        raise LoadSetupError(
            f"no devnet in {devnet_dir} (no genesis.json): start one with "
            f"python -m devnet up --dir {devnet_dir}"
        )
    devnet = open_devnet(devnet_dir)
    urls = tuple(devnet.url(i) for i in range(devnet.nodes))
    for url in urls:
        try:
            chain = Client(url, timeout_s=10, retry=RetryPolicy(attempts=2)).chain()
            break
        except VeilApiError:
            continue
    else:
        raise LoadSetupError(f"no node of the devnet in {devnet_dir} answers")
    keys = tuple(devnet.bank_dir(i) / "signing.key" for i in range(devnet.nodes))
    return Target(devnet, urls, chain, keys)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _client(target: Target, bank: int) -> Client:
    return Client(target.urls[bank], timeout_s=30)


def _live_client(target: Target, first: int) -> Client:
    """A client of node ``first``, or of the next node that answers (one may be down)."""
    count = len(target.urls)
    for offset in range(count):
        client = _client(target, (first + offset) % count)
        try:
            client.status()
        except VeilApiError:
            continue
        return client
    raise LoadSetupError("no node of the devnet answers")


def _last_nonce(target: Target, bank: int) -> int:
    key = SigningIdentity.load(target.bank_keys[bank]).public_key
    for offset in range(len(target.urls)):
        try:
            return _client(target, (bank + offset) % len(target.urls)).account(key).last_nonce
        except VeilApiError:
            continue
    raise LoadSetupError(f"no node answers for bank {bank}'s account")


def _submit_in_order(target: Target, bank: int, txs: Sequence[PreparedTx]) -> None:
    """Submit one bank's setup txs to its node in order and wait until all commit."""
    client = _live_client(target, bank)
    for start in range(0, len(txs), 64):
        chunk = txs[start : start + 64]
        for tx, item in zip(chunk, client.submit_batch([t.data for t in chunk]), strict=True):
            if item.error_code is not None:
                raise LoadSetupError(f"setup tx {tx.tx_id.hex()[:16]}… refused: {item.error_code}")
    for tx in txs:
        status = client.wait_for_commit(tx.tx_id, SETUP_COMMIT_TIMEOUT_S)
        if status.status != "committed":
            raise LoadSetupError(
                f"setup tx {tx.tx_id.hex()[:16]}… is {status.status} ({status.reason or '-'})"
            )


def fund_senders(
    target: Target, count: int, workers: int, console: Console
) -> list[tuple[Sender, ChainJob]]:
    """``count`` new senders registered and funded; for each, a chain job of 0 txs
    (its coin, recipient and asset filled in)."""
    banks = len(target.urls)
    chain = target.chain
    senders = new_senders(count, banks)
    console.print(f"registering and funding {count} senders through the {banks} banks")
    per_bank: list[list[Sender]] = [[s for s in senders if s.bank == b] for b in range(banks)]
    setup: list[list[PreparedTx]] = []
    issue_jobs = []
    for bank, own in enumerate(per_bank):
        nonce = _last_nonce(target, bank) + 1
        setup.append(register_txs(target.bank_keys[bank], chain.chain_id, own, nonce))
        bank_key = SigningIdentity.load(target.bank_keys[bank]).public_key
        asset = next(a.id for a in chain.assets if a.issuer == bank_key)
        template = IssueJob(
            target.bank_keys[bank],
            chain.chain_id,
            asset,
            chain.auditor_memo_public_key,
            owners=(),
            nonce=nonce + len(own),
        )
        issue_jobs.append(funding_jobs(template, own))
    flat_jobs = [job for jobs in issue_jobs for job in jobs]
    built = iter(build_issues(flat_jobs, workers))
    coins: dict[bytes, tuple[bytes, Coin]] = {}
    for bank, jobs in enumerate(issue_jobs):
        for issue in jobs:
            tx, issue_coins = next(built)
            setup[bank].append(tx)
            for (owner, _), coin in zip(issue.owners, issue_coins, strict=True):
                coins[owner] = (issue.asset, coin)
    for bank in range(banks):
        _submit_in_order(target, bank, setup[bank])
    out = []
    for index, sender in enumerate(senders):
        recipient = senders[(index + 1) % len(senders)]
        asset, coin = coins[sender.public_key]
        job = ChainJob(
            sender,
            (recipient.public_key, recipient.memo_public_key),
            chain.chain_id,
            asset,
            chain.auditor_memo_public_key,
            coin,
            0,
        )
        out.append((sender, job))
    return out


def transfer_lanes(
    target: Target, count: int, senders: int, workers: int, console: Console
) -> list[Lane]:
    """``count`` chained two-output transfers over ``senders`` funded senders."""
    funded = fund_senders(target, senders, workers, console)
    per_sender = math.ceil(count / senders)
    jobs = [replace(job, count=per_sender) for _, job in funded]
    total = per_sender * len(jobs)
    with _progress(console) as progress:
        task = progress.add_task(
            f"proving {total} transfers (2×64) on {workers} processes", total=total, rate=""
        )

        line_every_s = None if console.is_terminal else PROGRESS_LINE_EVERY_S
        last_line_s = [time.monotonic()]

        def built(n: int) -> None:
            progress.advance(task, n)
            done = progress.tasks[task]
            speed = done.speed
            progress.update(task, rate=f"{speed:.0f} tx/s" if speed else "")
            # Not a terminal (a log file, a pipe): the bar is drawn only when it ends,
            # so a long proving step looked like a hang; print a line now and then.
            now_s = time.monotonic()
            if line_every_s is not None and now_s - last_line_s[0] >= line_every_s:
                last_line_s[0] = now_s
                rate = f", {speed:.1f} tx/s" if speed else ""
                console.print(f"  proved {int(done.completed)}/{total}{rate}")

        chains = build_chains(jobs, workers, built)
    banks = len(target.urls)
    return [
        Lane("transfer", sender.bank % banks, deque(chain), chained=True)
        for (sender, _), chain in zip(funded, chains, strict=True)
    ]


def attest_lanes(target: Target, count: int, workers: int, console: Console) -> list[Lane]:
    """``count`` attests, split over the banks (one ordered lane per bank)."""
    banks = len(target.urls)
    per_bank = math.ceil(count / banks)
    tag = os.urandom(24)
    nonces = [_last_nonce(target, bank) + 1 for bank in range(banks)]
    console.print(f"signing {per_bank * banks} attests ({per_bank} per bank)")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(
                attest_txs, target.bank_keys[b], target.chain.chain_id, nonces[b], per_bank, tag
            )
            for b in range(banks)
        ]
        return [
            Lane("attest", bank, deque(future.result()), chained=False)
            for bank, future in enumerate(futures)
        ]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
