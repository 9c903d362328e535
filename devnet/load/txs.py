"""Signed txs for the load generator, made before the clock starts (``devnet.load.run``).

- Attests: each bank signs its own, nonces counting up from its last one, so a
  bank's attests must reach the chain in order (the generator keeps them so).
- Transfers: each *sender* account (registered by a bank, funded by one issue
  output) has a *chain*: transfer k spends the change output of transfer k − 1
  and pays 1 unit to the next sender. Two outputs each, so every transfer
  carries a 2×64 aggregated range proof. The chain is built offline because
  the builder knows the openings of the outputs it creates; the generator
  submits transfer k + 1 only once k is committed.

Proving is the expensive part (tens of ms per 2×64 proof), so chains are built
in a process pool on every core, in chunks, so that a progress bar can follow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from ledger.build import (
    OutputPlan,
    build_attest,
    build_issue,
    build_register_account,
    build_transfer,
    prove_account_possession,
)
from ledger.identity import SigningIdentity
from ledger.tx import MAX_OUTPUTS, output_id_of
from privacy.memo import Opening, generate_memo_keypair

CHAIN_CHUNK_TXS = 8
"""Transfers built per pool task: small enough for a smooth progress bar."""
SENDER_FUNDS = 1_000_000_000
ATTEST_LABEL = "veil-load"


@dataclass(frozen=True, slots=True)
class Sender:
    """A load-test account: its keys (as picklable bytes) and the bank that registers it."""

    seed: bytes = field(repr=False)
    memo_private_key: bytes = field(repr=False)
    memo_public_key: bytes
    bank: int

    @property
    def identity(self) -> SigningIdentity:
        return SigningIdentity.from_seed(self.seed)

    @property
    def public_key(self) -> bytes:
        return self.identity.public_key


def new_senders(count: int, banks: int) -> list[Sender]:
    """``count`` fresh accounts, spread over the banks round-robin."""
    senders = []
    for index in range(count):
        memo_private, memo_public = generate_memo_keypair()
        senders.append(Sender(os.urandom(32), memo_private, memo_public, index % banks))
    return senders


@dataclass(frozen=True, slots=True)
class Coin:
    """An output a sender owns and can spend: its id and encoded opening."""

    output_id: bytes
    opening: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PreparedTx:
    tx_id: bytes
    data: bytes


def register_txs(
    bank_key: Path, chain_id: bytes, senders: Sequence[Sender], first_nonce: int
) -> list[PreparedTx]:
    """The bank's ``register_account`` txs for ``senders``, nonces from ``first_nonce``."""
    bank = SigningIdentity.load(bank_key)
    out = []
    for offset, sender in enumerate(senders):
        pop = prove_account_possession(
            sender.identity,
            chain_id,
            registrar=bank.public_key,
            memo_public_key=sender.memo_public_key,
        )
        built = build_register_account(
            bank,
            chain_id,
            sender.public_key,
            sender.memo_public_key,
            proof_of_possession=pop,
            nonce=first_nonce + offset,
        )
        out.append(PreparedTx(built.tx_id, built.encode()))
    return out


@dataclass(frozen=True, slots=True)
class IssueJob:
    bank_key: Path
    chain_id: bytes
    asset: bytes
    auditor_memo_key: bytes
    owners: tuple[tuple[bytes, bytes], ...]
    """(account key, memo key) of each funded sender; a power of two, at most 16."""
    nonce: int


def build_funding(job: IssueJob) -> tuple[PreparedTx, list[Coin]]:
    """One issue of ``SENDER_FUNDS`` to each owner (runs in a pool worker)."""
    bank = SigningIdentity.load(job.bank_key)
    plans = [OutputPlan(owner, memo, SENDER_FUNDS) for owner, memo in job.owners]
    built = build_issue(bank, job.chain_id, job.asset, plans, job.auditor_memo_key, nonce=job.nonce)
    coins = [
        Coin(output_id_of(built.tx_id, i), opening.encode())
        for i, opening in enumerate(built.openings)
    ]
    return PreparedTx(built.tx_id, built.encode()), coins


def funding_jobs(template: IssueJob, senders: Sequence[Sender]) -> list[IssueJob]:
    """Issues of up to ``MAX_OUTPUTS`` outputs each (a power of two, as the rules
    want) funding ``senders``, nonces from ``template.nonce``."""
    jobs: list[IssueJob] = []
    index = 0
    while index < len(senders):
        size = 1
        while size * 2 <= min(MAX_OUTPUTS, len(senders) - index):
            size *= 2
        group = senders[index : index + size]
        owners = tuple((s.public_key, s.memo_public_key) for s in group)
        jobs.append(replace(template, owners=owners, nonce=template.nonce + len(jobs)))
        index += size
    return jobs


@dataclass(frozen=True, slots=True)
class ChainJob:
    sender: Sender
    recipient: tuple[bytes, bytes]
    """(account key, memo key) paid 1 unit by each transfer."""
    chain_id: bytes
    asset: bytes
    auditor_memo_key: bytes
    coin: Coin
    count: int


def build_chain(job: ChainJob) -> tuple[list[PreparedTx], Coin]:
    """``count`` chained transfers from ``job.coin``; the change coin left at the end."""
    sender = job.sender.identity
    coin = job.coin
    out = []
    for _ in range(job.count):
        opening = Opening.decode(coin.opening)
        pay = OutputPlan(job.recipient[0], job.recipient[1], 1)
        change = OutputPlan(sender.public_key, job.sender.memo_public_key, opening.value - 1)
        built = build_transfer(
            sender,
            job.sender.memo_public_key,
            job.chain_id,
            asset=job.asset,
            inputs=[(coin.output_id, opening)],
            plans=[pay, change],
            auditor_memo_key=job.auditor_memo_key,
        )
        out.append(PreparedTx(built.tx_id, built.encode()))
        coin = Coin(output_id_of(built.tx_id, 1), built.openings[1].encode())
    return out, coin


def build_chains(
    jobs: Sequence[ChainJob],
    workers: int,
    on_built: Callable[[int], None] = lambda n: None,
) -> list[list[PreparedTx]]:
    """Each job's chain, built in ``CHAIN_CHUNK_TXS`` chunks on ``workers`` processes;
    ``on_built(n)`` after each chunk of ``n`` txs."""
    chains: list[list[PreparedTx]] = [[] for _ in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[tuple[list[PreparedTx], Coin]], tuple[int, int]] = {}

        def start(index: int, coin: Coin, left: int) -> None:
            chunk = min(CHAIN_CHUNK_TXS, left)
            part = replace(jobs[index], coin=coin, count=chunk)
            running[pool.submit(build_chain, part)] = (index, left - chunk)

        for index, job in enumerate(jobs):
            if job.count > 0:
                start(index, job.coin, job.count)
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                index, left = running.pop(future)
                txs, coin = future.result()
                chains[index].extend(txs)
                on_built(len(txs))
                if left > 0:
                    start(index, coin, left)
    return chains


def build_issues(jobs: Sequence[IssueJob], workers: int) -> list[tuple[PreparedTx, list[Coin]]]:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(build_funding, jobs))


def attest_txs(
    bank_key: Path, chain_id: bytes, first_nonce: int, count: int, tag: bytes
) -> list[PreparedTx]:
    """``count`` attests by the bank, nonces from ``first_nonce``; ``tag`` makes the
    digests differ from other runs'."""
    bank = SigningIdentity.load(bank_key)
    out = []
    for offset in range(count):
        digest = (tag + offset.to_bytes(8, "big")).ljust(32, b"\0")[:32]
        built = build_attest(bank, chain_id, ATTEST_LABEL, digest, nonce=first_nonce + offset)
        out.append(PreparedTx(built.tx_id, built.encode()))
    return out
