"""A small deterministic chain for ledger spec and property tests.

Two member banks (A issues USD, B issues EUR), three registered clients
(alice, bob, carol), one unregistered key (mallory), four validators (the
fewest PBFT runs with) and an auditor. Keys come from fixed seeds, so the genesis and the chain id
are the same in every run; proofs and memos use fresh randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nacl.public import PrivateKey

from ledger.apply import BlockResult, apply_block, commit_applied
from ledger.batch import BlockMetadata
from ledger.block import Block, BlockHeader, decode_block, primary_for_view, tx_root
from ledger.build import (
    BuiltTx,
    OutputPlan,
    build_issue,
    build_register_account,
    build_transfer,
    prove_account_possession,
    prove_member_possession,
)
from ledger.chain import commit_genesis
from ledger.execute import ExecutedBatch, execute_batch
from ledger.genesis import (
    DEFAULT_PARAMS,
    AccountInfo,
    AssetInfo,
    Genesis,
    MemberInfo,
    ValidatorInfo,
)
from ledger.identity import SigningIdentity
from ledger.rules import get_clock
from ledger.store import MemoryStore
from ledger.tx import Tx
from ledger.wallet import OwnedOutput
from privacy.memo import Opening


@dataclass(frozen=True)
class Party:
    name: str
    identity: SigningIdentity
    memo_private: bytes

    @property
    def key(self) -> bytes:
        return self.identity.public_key

    @property
    def memo_public(self) -> bytes:
        return bytes(PrivateKey(self.memo_private).public_key)

    def plan(self, value: int, note: bytes = b"") -> OutputPlan:
        return OutputPlan(self.key, self.memo_public, value, note)


def _party(name: str) -> Party:
    seed = hashlib.sha256(b"veil-test-party/" + name.encode()).digest()
    memo = hashlib.sha256(b"veil-test-memo/" + name.encode()).digest()
    return Party(name, SigningIdentity.from_seed(seed), memo)


USD = hashlib.sha256(b"asset/USD.A").digest()
EUR = hashlib.sha256(b"asset/EUR.B").digest()
GENESIS_TIME_MS = 1_700_000_000_000


class World:
    def __init__(self) -> None:
        self.bank_a = _party("bank-a")
        self.bank_b = _party("bank-b")
        self.alice = _party("alice")
        self.bob = _party("bob")
        self.carol = _party("carol")
        self.mallory = _party("mallory")
        self.auditor = _party("auditor")
        self.validators = [_party(f"validator-{i}") for i in range(4)]
        self.genesis = Genesis(
            version=1,
            chain_name="veil-spec",
            genesis_time_ms=GENESIS_TIME_MS,
            validators=tuple(ValidatorInfo(v.name, v.key, "", "") for v in self.validators),
            members=(
                MemberInfo("Bank A", self.bank_a.key, self.bank_a.memo_public),
                MemberInfo("Bank B", self.bank_b.key, self.bank_b.memo_public),
            ),
            accounts=(
                AccountInfo(self.alice.key, self.alice.memo_public, self.bank_a.key),
                AccountInfo(self.bob.key, self.bob.memo_public, self.bank_a.key),
                AccountInfo(self.carol.key, self.carol.memo_public, self.bank_b.key),
            ),
            assets=(
                AssetInfo(USD, "USD.A", self.bank_a.key),
                AssetInfo(EUR, "EUR.B", self.bank_b.key),
            ),
            auditor_memo_public_key=self.auditor.memo_public,
            params=DEFAULT_PARAMS,
        )
        self.chain_id = self.genesis.chain_id
        self.nonces: dict[bytes, int] = {}

    def next_nonce(self, party: Party) -> int:
        self.nonces[party.key] = self.nonces.get(party.key, 0) + 1
        return self.nonces[party.key]

    def new_store(self) -> MemoryStore:
        store = MemoryStore()
        commit_genesis(store, self.genesis)
        return store

    # --- txs -------------------------------------------------------------------

    def issue(self, issuer: Party, asset: bytes, plans: Sequence[OutputPlan]) -> BuiltTx:
        return build_issue(
            issuer.identity,
            self.chain_id,
            asset,
            plans,
            self.auditor.memo_public,
            nonce=self.next_nonce(issuer),
        )

    def transfer(
        self,
        sender: Party,
        asset: bytes,
        inputs: Iterable[tuple[bytes, Opening]],
        plans: Sequence[OutputPlan],
    ) -> BuiltTx:
        return build_transfer(
            sender.identity,
            sender.memo_public,
            self.chain_id,
            asset=asset,
            inputs=list(inputs),
            plans=plans,
            auditor_memo_key=self.auditor.memo_public,
        )

    def pop(
        self,
        account: Party,
        registrar: Party,
        *,
        memo_public: bytes | None = None,
        chain_id: bytes | None = None,
    ) -> bytes:
        """``account``'s proof of possession for a registration by ``registrar``."""
        return prove_account_possession(
            account.identity,
            self.chain_id if chain_id is None else chain_id,
            registrar=registrar.key,
            memo_public_key=account.memo_public if memo_public is None else memo_public,
        )

    def member_pop(self, member: Party, name: str, *, memo_public: bytes | None = None) -> bytes:
        """``member``'s proof of possession for joining as ``name`` with its memo key."""
        return prove_member_possession(
            member.identity,
            self.chain_id,
            memo_public_key=member.memo_public if memo_public is None else memo_public,
            name=name,
        )

    def register(
        self, registrar: Party, account: Party, *, nonce: int, memo_public: bytes | None = None
    ) -> BuiltTx:
        """``registrar`` registers ``account`` (with its own memo key unless given)."""
        memo = account.memo_public if memo_public is None else memo_public
        return build_register_account(
            registrar.identity,
            self.chain_id,
            account.key,
            memo,
            proof_of_possession=self.pop(account, registrar, memo_public=memo),
            nonce=nonce,
        )

    @staticmethod
    def owned(built: BuiltTx, index: int) -> OwnedOutput:
        opening = built.openings[index]
        return OwnedOutput(built.output_ids()[index], built.tx_id, opening.commitment(), opening)

    @staticmethod
    def spend(built: BuiltTx, index: int) -> tuple[bytes, Opening]:
        return built.output_ids()[index], built.openings[index]

    # --- blocks ----------------------------------------------------------------

    def metadata(self, store: MemoryStore, *, view: int = 0) -> BlockMetadata:
        """Proposal metadata for the next block: one millisecond per height."""
        return BlockMetadata(GENESIS_TIME_MS + store.height() + 1, view)

    def execute(
        self, store: MemoryStore, txs: Sequence[BuiltTx | bytes], *, view: int = 0
    ) -> ExecutedBatch:
        """The next block built from ``txs`` as one consensus batch."""
        raw = [t if isinstance(t, bytes) else t.encode() for t in txs]
        metadata = self.metadata(store, view=view)
        return execute_batch(store, self.genesis, store.height() + 1, raw, metadata)

    def propose(
        self, store: MemoryStore, txs: Sequence[BuiltTx | bytes], *, view: int = 0
    ) -> Block:
        """The next block over ``txs``, which must all be valid."""
        executed = self.execute(store, txs, view=view)
        if executed.rejected:
            raise AssertionError(f"the batch rejected txs: {executed.rejected}")
        return executed.block

    def commit(self, store: MemoryStore, txs: Sequence[BuiltTx | bytes]) -> BlockResult:
        """Execute ``txs`` as the next batch, replay the block, and commit it."""
        block = self.propose(store, txs)
        result = apply_block(store, block, self.genesis)
        commit_applied(store, block, result, certificate=b"cert", metadata=self.metadata(store))
        return result


def metadata_of(block: Block) -> BlockMetadata:
    """The consensus metadata a block was executed from (its view and timestamp)."""
    return BlockMetadata(block.header.timestamp_ms, block.header.view)


def committed_blocks(store: MemoryStore) -> list[Block]:
    return [decode_block(store.block_at(h) or b"") for h in range(1, store.height() + 1)]


def raw_block(
    world: World,
    store: MemoryStore,
    txs: Sequence[BuiltTx | Tx],
    **header_changes: object,
) -> Block:
    """A block over ``txs`` exactly as given (no validity filtering), header overridable."""
    envelopes = tuple(t.tx if isinstance(t, BuiltTx) else t for t in txs)
    clock = get_clock(store)
    fields: dict[str, object] = {
        "version": 1,
        "height": store.height() + 1,
        "prev_hash": store.tip_hash(),
        "tx_root": tx_root(envelopes),
        "state_root": bytes(32),
        "proposer": primary_for_view(world.genesis, 0),
        "view": 0,
        "timestamp_ms": (clock.timestamp_ms if clock else GENESIS_TIME_MS) + 1,
    }
    fields.update(header_changes)
    return Block(BlockHeader(**fields), envelopes)  # type: ignore[arg-type]
