"""The node's mempool: admission, capacity, per-account rate, and feeding the core.

Sans-I/O (no asyncio, clock or randomness: a test checks the imports). Time
enters as ``now_ms`` arguments; the range proofs are verified by whoever
drives it (the runtime's proof pool), between ``admit`` and ``finish``.

Admission of ``tx_bytes`` (``admit``), first failure wins:

1. decode (``ledger.tx.decode_tx``): ``Rejected(MALFORMED/TOO_LARGE/...)``;
2. the tx id is pending, being admitted, or committed: ``Duplicate`` (the
   same answer for the same tx, so a resubmission is idempotent);
3. capacity: pending plus in-admission txs at ``max_txs`` or ``max_bytes``,
   or, for a client's tx (not a peer's gossip), at the backlog bound:
   ``Busy(MEMPOOL_FULL)``, wait ``full_retry_after_s``. A client's account refused here or
   at step 4 gets the same answer again until its wait has passed,
   even if room opens sooner: otherwise a later nonce of that account, sent
   in the same batch, could be admitted (a block freed room, or the window
   slid, between two of the batch's txs) and commit before the refused one,
   which then failed as ``REPLAYED`` (up to 18 a run of attests at 1,600/s,
   2026-12-02). A peer's gossip refused at the hard bounds holds nothing back.
   The backlog bound is what the
   network committed in the last ``max_backlog_ms`` at its recent rate
   (``node.commit_rate``; ``record_commits`` after each block), at least
   ``min_backlog_txs``: past it, admitting more only makes every admitted tx
   wait longer. Gossip is held only to the hard bounds, so a tx another
   validator admitted still reaches this one (and, as primary, its batches)
   without waiting for the core's relay.
   **Shares.** Every held tx counts for its origin: the peer that gossiped
   it, or, for a client's tx, the member bank that registered its signer
   (in a committed or a pending tx). A peer's
   gossip is refused once that peer holds 1/n of ``max_txs`` or of
   ``max_bytes`` (n validators); a client's tx past the backlog bound is
   refused only if its bank holds 1/n of that bound here. One validator's
   flood, whoever signed its txs, so fills its own share and never the
   hard bounds, and every bank's clients keep theirs. Gossip refused at its
   share may let a later nonce of an account overtake a refused one (the
   ``REPLAYED`` case above), but only once that peer holds 1/n of
   ``max_txs``, far past any backlog its own clients are allowed;
4. the signer's rate, for a client's tx: a token bucket of
   ``account_txs_per_window`` txs, refilled at that many per
   ``account_window_ms``, taken by the admissions that passed step 5 (so
   signed by the account: forged txs naming it do not count). Empty:
   ``Busy(RATE_LIMITED)``, told to wait until a token is back, at least
   ``MIN_RATE_RETRY_MS`` (the error body carries it, ``retry_after_ms``).
   A peer's gossip is neither limited nor counted: the validator that took it
   from the client counted it. Refusing part of a gossiped run of one
   account's txs also let a later nonce reach the primary's batches before an
   earlier one, which then failed as ``REPLAYED`` (attests at 1,600/s).
   Steps 3 and 4 refuse on the signer the tx claims, before its signature is
   checked (step 5), so that overload is shed before its CPU is spent: a
   forged tx naming an account that is at its rate, or sent while the
   mempool is full, extends that account's hold;
5. phase 1 of ``ledger.mempool.PendingTxs`` (every check but the range
   proof) on top of the pending txs, so a second spend of an input a pending
   tx spends is refused (``DOUBLE_SPEND``) while the first is pending. Its
   balance (excess) proofs are deferred (``CheckedTx.excess_checks``);
6. the proofs: a tx with no proof, or whose range proofs the ``ProofCache``
   knows, is accepted at once (``Accepted``) once its balance proofs are
   checked here; otherwise ``admit`` returns ``ProofWanted``. The caller
   checks a micro-batch's balance proofs together (``check_balances``, one
   multiscalar sum) and its range proofs in the process pool, then calls
   ``finish(wanted, proof_ok, balanced=...)``. Without ``balanced`` (or with
   False) ``finish`` runs the stateful rules again, which check the balance
   proofs one by one: no tx is accepted on a proof nobody checked, and a bad
   one is ``UNBALANCED`` as the rules order has it.

Accepted txs wait in arrival order. ``take_unfed`` hands the ones the core
has not seen yet as consensus requests (the runtime feeds them with
``ClientBatchReady`` every few ms, on every replica, so backups notice a
primary that censors). After each block ``on_block`` drops the committed
txs (by the block's ids, ``note_committed``, when it is the only block since
the last rebuild; else by the tx index) and the txs whose exact bytes a block
rejected (``executed``: consensus will not order those bytes again, so a copy
that fits the new state would wait forever), builds a new ``PendingTxs`` over the
new state and re-admits the survivors in order (``PendingTxs.readmit``: their
proofs verified already, and a survivor whose reads the block left unchanged
costs a few key lookups; with the block's state writes noted, a survivor that
read none of the keys on which the two views may differ costs none,
``ledger.pending_changes``); the ones that no longer fit are returned with their
reason. Before that walk, with the block's state writes noted and no bytes
rejected, it tries the rebuild in place (``ledger.pending_index``): if the
block left every survivor's reads as they were, only the committed txs leave
the pending view, at a cost that grows with the block and not with the
backlog. ``rebuilds`` counts both kinds.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence
from dataclasses import dataclass, replace

from consensus.messages import Request
from ledger import signature_rule
from ledger.execute import request_id_of
from ledger.genesis import Genesis
from ledger.identity import signing_bytes
from ledger.mempool import CheckedTx, PendingTxs, verify_statement
from ledger.pending_changes import PendingChanges
from ledger.pending_index import PendingIndex
from ledger.proof_cache import ProofCache
from ledger.reasons import Reason, TxRejected
from ledger.rules import AccountRecord, get_account
from ledger.stateless_cache import StatelessCache
from ledger.store import StoreReader
from ledger.tx import DecodedTx, decode_tx
from node.commit_rate import CommitRate
from node.services import (
    BUSY_MEMPOOL_FULL,
    BUSY_RATE_LIMITED,
    Accepted,
    Busy,
    Duplicate,
    Rejected,
    SubmitOutcome,
)
from privacy.excess_batch import batch_verify_excess

PROOF_BATCH_MAX = 64
"""Admissions whose proofs are checked together at most (``[mempool] proof_batch_max``)."""
PROOF_BATCH_WAIT_MS = 40
"""How long a proof batch gathers (``[mempool] proof_batch_wait_ms``). 40, not 5: at
150 transfers/s a 5 ms batch held about 8 proofs (0.86-1.05 ms of pool CPU each), a
40 ms one about 15 (0.70 ms); docs/performance.md, "Proof batches"."""

MIN_RATE_RETRY_MS = 1_000
"""The shortest wait a rate-limited account is told. At its rate a slot frees every few
ms; told so, clients came back sooner, and under overload the longer queue that
made cost more p99 than the wait saved (docs/performance.md, "Busy answers that
name the exact wait"): a busy answer is backpressure."""

MAX_DECODED_AHEAD = 4_096
MAX_DECODED_AHEAD_BYTES = 16 << 20
"""What ``check_ahead`` keeps for ``admit`` at most, in txs and in their bytes. A
gossip chunk is admitted in the same turn; a client batch's txs a few turns
later, each by its own task. Leftovers (a node stopping, gossip refused by its
hash) are pushed out oldest first."""

MAX_TRACKED_ACCOUNTS = 100_000
"""Accounts whose rate is tracked at most; full buckets are pruned first (the state is bounded)."""

MAX_REMEMBERED_SIGNERS = 100_000
"""Signers whose registering member is remembered (an account's never changes)."""

UNKNOWN_MEMBER = b""
"""The share of clients' txs whose signer has no account, committed or pending (the
rules refuse those anyway): one share for all of them."""


_NO_KEYS: KeysView[bytes] = {}.keys()
"""``differing`` for a rebuild without the block's writes (not read: ``changes`` is None)."""


def peer_origin(peer: int | None) -> bytes:
    """The share a peer's gossip counts in (never a 32-byte member key)."""
    return b"peer:%d" % peer if peer is not None else b"peer:?"


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = 20_000
    max_bytes: int = 64 * 1024 * 1024
    account_txs_per_window: int = 500
    account_window_ms: int = 1_000
    full_retry_after_s: int = 1
    max_backlog_ms: int = 2_000
    """Clients' txs are refused once the pending ones would take longer than this
    to commit at the network's recent commit rate..."""
    min_backlog_txs: int = 1_024
    """...or once this many are pending, if that is more (start-up): four blocks of
    the default 256 txs, what a primary may have in flight (``max_inflight_batches``)
    while its first block is still being cut and agreed."""
    commit_rate_window_ms: int = 5_000
    """The commit rate is measured over this much busy time (the mempool holding txs)."""

    def __post_init__(self) -> None:
        names = (
            *("max_txs", "max_bytes", "account_txs_per_window", "account_window_ms"),
            *("max_backlog_ms", "min_backlog_txs", "commit_rate_window_ms"),
        )
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True, slots=True)
class ProofWanted:
    """Phase 1 passed; verify ``checked.statements`` (the output proof and a loan's
    state-derived ones) and call ``Mempool.finish``."""

    checked: CheckedTx
    tx_bytes: bytes
    generation: int


Admission = SubmitOutcome | ProofWanted


def check_balances(batch: Sequence[ProofWanted]) -> list[bool]:
    """Per admission, whether its deferred balance proofs all verify (the word
    ``Mempool.finish`` takes as ``balanced``): one multiscalar check for the whole
    batch (``privacy.excess_batch``), tens of µs a proof against about 100 alone."""
    checks = [check for wanted in batch for check in wanted.checked.excess_checks]
    bad = set(batch_verify_excess(checks)) if checks else set()
    balanced = []
    first = 0
    for wanted in batch:
        count = len(wanted.checked.excess_checks)
        balanced.append(not bad.intersection(range(first, first + count)))
        first += count
    return balanced


@dataclass(slots=True)
class _Entry:
    checked: CheckedTx
    """As the current ``PendingTxs`` accepted it (its reads, for ``readmit``)."""
    tx_bytes: bytes
    fed: bool


class Mempool:
    """Admitted, uncommitted txs over the committed ``state``; see the module docstring."""

    def __init__(
        self,
        state: StoreReader,
        genesis: Genesis,
        proof_cache: ProofCache,
        limits: MempoolLimits | None = None,
        *,
        stateless_cache: StatelessCache | None = None,
        on_unfed: Callable[[], None] | None = None,
    ) -> None:
        self._state = state
        # Called whenever a tx joins the unfed queue, so the runtime's feeder
        # sleeps while there is nothing to feed instead of polling every few ms.
        self._on_unfed = on_unfed
        self._genesis = genesis
        self._cache = proof_cache
        self._stateless = stateless_cache
        self.limits = limits if limits is not None else MempoolLimits()
        self._pending = PendingTxs(state, genesis)
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._index = PendingIndex()
        """The entries' reads and writes by key, for the rebuild in place."""
        self.rebuilds: Counter[str] = Counter()
        """Rebuilds after a block, ``in_place`` (``ledger.pending_index``) or ``in_full``."""
        # Ids of accepted txs not yet handed to the core, oldest first (ids
        # dropped since are skipped): the feeder runs every few ms, and
        # scanning every pending entry for the unfed ones cost O(backlog) each
        # time (20,000 entries at 200 feeds/s under overload).
        self._unfed: deque[bytes] = deque()
        self._in_admission: dict[bytes, bytes] = {}
        """Txs at their proof check: id -> bytes (``on_block`` matches them too)."""
        self._bytes = 0
        self._in_admission_bytes = 0
        self._generation = 0
        self._account_tat: dict[bytes, int] = {}
        """Each client account's theoretical arrival time for its rate (``_rate_limited``)."""
        self._refused_until: dict[bytes, tuple[int, str]] = {}
        """A client's account told to retry later: (until ms, the busy code), step 3."""
        self._commit_rate = CommitRate(self.limits.commit_rate_window_ms)
        self._last_commit_ms: int | None = None
        self._noted: tuple[int, frozenset[bytes], Mapping[bytes, bytes | None] | None] | None = None
        self._state_height = state.height()
        # Step 3's shares: held txs (pending or at their proof check) and bytes by
        # origin, the gossiping peer or the client's bank.
        self._shares = max(1, len(genesis.validators))
        self._member_by_signer: dict[bytes, bytes] = {}
        self._held_origin: dict[bytes, tuple[bytes, int]] = {}
        """tx id -> (its origin, its size), for every held tx."""
        self._held_by_origin: Counter[bytes] = Counter()
        self._bytes_by_origin: Counter[bytes] = Counter()
        self._decoded_ahead: OrderedDict[bytes, tuple[DecodedTx, bool | None]] = OrderedDict()
        """tx bytes -> (decoded, its sender signature's verdict or None if not yet
        checked), from ``check_ahead`` until ``admit`` takes it."""
        self._decoded_ahead_bytes = 0

    # --- views -------------------------------------------------------------------

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def in_admission(self) -> int:
        return len(self._in_admission)

    def backlog_bound_txs(self, now_ms: int) -> int:
        """Pending txs past which a client's tx is refused (step 3)."""
        limits = self.limits
        at_rate = int(self._commit_rate.per_s(now_ms) * limits.max_backlog_ms / 1000)
        return min(limits.max_txs, max(limits.min_backlog_txs, at_rate))

    def record_commits(self, txs: int, now_ms: int) -> None:
        """A block of ``txs`` committed (accepted and rejected) at ``now_ms``."""
        self._commit_rate.record(txs, now_ms)
        self._last_commit_ms = now_ms

    # --- admission ---------------------------------------------------------------

    def check_ahead(
        self,
        txs: Sequence[bytes],
        now_ms: int,
        *,
        from_client: bool = True,
        peer: int | None = None,
    ) -> int:
        """Decode a group of txs about to be admitted one by one, and check the
        signatures of the new ones as one batch (``ledger.signature_rule``):
        0.35–0.9 of a libsodium check each, by how many keys sign. ``admit`` then
        takes the decoded tx and the signature's verdict, good or bad, instead of
        finding either again.

        Only txs ``admit`` would check: not when the mempool is full or the
        gossiping peer over its share, and not a tx that does not decode, that is
        held or committed, or whose client account is still told to wait. A group
        too small to batch is only decoded. Returns how many signatures it
        checked."""
        limits = self.limits
        if len(self._entries) + len(self._in_admission) >= limits.max_txs:
            return 0
        if not from_client and self._held_by_origin[peer_origin(peer)] >= max(
            1, limits.max_txs // self._shares
        ):
            return 0
        params = self._genesis.params
        chain_id = self._genesis.chain_id
        found: list[tuple[bytes, DecodedTx, signature_rule.Triple]] = []
        for tx_bytes in txs:
            try:
                dtx = decode_tx(tx_bytes, chain_id, max_tx_bytes=params.max_tx_bytes)
            except TxRejected:
                continue
            tx_id = dtx.tx_id
            if tx_id in self._entries or tx_id in self._in_admission:
                continue
            if from_client and self._refused_until.get(dtx.signer, (0, ""))[0] > now_ms:
                continue
            if self._state.tx_location(tx_id) is not None:
                continue
            tx = dtx.tx
            try:
                message = signing_bytes(tx.kind, chain_id, tx.body)
            except ValueError:
                continue  # a kind that is no domain tag: check_stateless says so
            found.append((tx_bytes, dtx, (dtx.signer, message, tx.signature)))
        verdicts: Sequence[bool | None]
        if len(found) >= signature_rule.MIN_BATCH:
            verdicts = signature_rule.verify_batch([triple for _, _, triple in found])
        else:
            verdicts = [None] * len(found)  # decoded all the same: admit need not again
        for (tx_bytes, dtx, _), verdict in zip(found, verdicts, strict=True):
            self._forget_ahead(tx_bytes)
            self._decoded_ahead[tx_bytes] = (dtx, verdict)
            self._decoded_ahead_bytes += len(tx_bytes)
        while (
            len(self._decoded_ahead) > MAX_DECODED_AHEAD
            or self._decoded_ahead_bytes > MAX_DECODED_AHEAD_BYTES
        ):
            self._forget_ahead(next(iter(self._decoded_ahead)))
        return len(found) if len(found) >= signature_rule.MIN_BATCH else 0

    def _forget_ahead(self, tx_bytes: bytes) -> tuple[DecodedTx, bool | None] | None:
        """What ``check_ahead`` left for ``tx_bytes``, taken out."""
        ahead = self._decoded_ahead.pop(tx_bytes, None)
        if ahead is not None:
            self._decoded_ahead_bytes -= len(tx_bytes)
        return ahead

    def admit(
        self, tx_bytes: bytes, now_ms: int, *, from_client: bool = True, peer: int | None = None
    ) -> Admission:
        """Steps 1-6 of the module docstring; changes nothing unless it says so.
        ``from_client=False``: gossip from validator ``peer``, held to the hard
        bounds and to that peer's share of them."""
        admission = self._admit(tx_bytes, now_ms, from_client, peer)
        self._commit_rate.observe(now_ms, busy=bool(self._entries or self._in_admission))
        return admission

    def _admit(
        self, tx_bytes: bytes, now_ms: int, from_client: bool, peer: int | None
    ) -> Admission:
        params = self._genesis.params
        ahead = self._forget_ahead(tx_bytes)
        if ahead is not None:
            dtx, signature_ok = ahead
        else:
            signature_ok = None
            try:
                dtx = decode_tx(tx_bytes, self._genesis.chain_id, max_tx_bytes=params.max_tx_bytes)
            except TxRejected as exc:
                return Rejected(None, exc.reason.value, exc.detail)
        tx_id = dtx.tx_id
        if (
            tx_id in self._entries
            or tx_id in self._in_admission
            or self._state.tx_location(tx_id) is not None
        ):
            return Duplicate(tx_id)
        size = len(tx_bytes)
        limits = self.limits
        if from_client:
            still_busy = self._still_refused(dtx.signer, now_ms)
            if still_busy is not None:
                return still_busy
        held = len(self._entries) + len(self._in_admission)
        origin = self._member_of(dtx.signer) if from_client else peer_origin(peer)
        if (
            held >= limits.max_txs
            or self._bytes + self._in_admission_bytes + size > limits.max_bytes
            or self._over_share(origin, size, held, now_ms, from_client=from_client)
        ):
            full = Busy(BUSY_MEMPOOL_FULL, limits.full_retry_after_s * 1000)
            return self._hold(dtx.signer, full, now_ms) if from_client else full
        if from_client:
            wait_ms = self._rate_limited(dtx.signer, now_ms)
            if wait_ms is not None:
                return self._hold(dtx.signer, Busy(BUSY_RATE_LIMITED, wait_ms), now_ms)
        try:
            # Step 2 looked the id up already: one tx-index read per admission.
            checked = self._pending.precheck(
                dtx, duplicates_checked=True, defer_excess=True, signature_ok=signature_ok
            )
        except TxRejected as exc:
            return Rejected(tx_id, exc.reason.value, exc.detail)
        if from_client:
            # Only now, with its signature checked: a forged tx must not use up the
            # window of the account it names.
            self._count_admission(dtx.signer, now_ms)
        if self._stateless is not None:
            self._stateless.add(tx_bytes, dtx)  # execution need not decode or check again
        if all(statement in self._cache for statement in checked.statements):
            # The range proofs are known good (execution verified them first): check
            # the balance proofs now too rather than hold the tx for a batch.
            if checked.excess_checks:  # an attest has none: not even the call
                try:
                    balanced = not batch_verify_excess(checked.excess_checks)
                    checked = self._balance_checked(checked, balanced)
                except TxRejected as exc:
                    return Rejected(tx_id, exc.reason.value, exc.detail)
            self._take(tx_id, origin, size)
            return self._accept(checked, tx_bytes)
        self._in_admission[tx_id] = tx_bytes
        self._in_admission_bytes += size
        self._take(tx_id, origin, size)
        return ProofWanted(checked, tx_bytes, self._generation)

    def _member_of(self, signer: bytes) -> bytes:
        """The member bank that registered ``signer``'s account (a member's own
        account names itself), pending registrations included, or ``UNKNOWN_MEMBER``."""
        member = self._member_by_signer.get(signer)
        if member is not None:
            return member
        try:
            account: AccountRecord | None = get_account(self._state, signer)
            if account is None:
                # Registered by a pending tx: not remembered, as that tx may be dropped.
                pending = get_account(self._pending.view, signer)
                return pending.registered_by if pending is not None else UNKNOWN_MEMBER
        except ValueError:  # an undecodable record: the rules will say why
            return UNKNOWN_MEMBER
        if len(self._member_by_signer) >= MAX_REMEMBERED_SIGNERS:
            self._member_by_signer.clear()  # a cache: rebuilt one read per signer
        self._member_by_signer[signer] = account.registered_by
        return account.registered_by

    def _over_share(
        self, origin: bytes, size: int, held: int, now_ms: int, *, from_client: bool
    ) -> bool:
        """Step 3's shares: a peer's gossip past its share of the hard bounds; a
        client's tx past the backlog bound, unless its bank holds less than its share
        of that bound. Why: without shares, one byzantine validator gossiping valid
        txs filled the backlog, and every bank's clients got ``MEMPOOL_FULL`` while
        the flood lasted."""
        limits = self.limits
        if not from_client:
            return (
                self._held_by_origin[origin] >= max(1, limits.max_txs // self._shares)
                or self._bytes_by_origin[origin] + size > limits.max_bytes // self._shares
            )
        bound = self.backlog_bound_txs(now_ms)
        return held >= bound and self._held_by_origin[origin] >= max(1, bound // self._shares)

    def _take(self, tx_id: bytes, origin: bytes, size: int) -> None:
        self._held_origin[tx_id] = (origin, size)
        self._held_by_origin[origin] += 1
        self._bytes_by_origin[origin] += size

    def _release(self, tx_id: bytes) -> None:
        """The tx is held no more (idempotent)."""
        held = self._held_origin.pop(tx_id, None)
        if held is None:
            return
        origin, size = held
        self._held_by_origin[origin] -= 1
        self._bytes_by_origin[origin] -= size
        if not self._held_by_origin[origin]:
            del self._held_by_origin[origin]
            del self._bytes_by_origin[origin]

    def held_by_origin(self) -> dict[bytes, int]:
        """Held txs (pending or at their proof check) by origin: ``peer_origin(i)``
        for validator i's gossip, the registering bank's key for clients' txs."""
        return dict(self._held_by_origin)

    def finish(
        self, wanted: ProofWanted, proof_ok: bool, *, balanced: bool = False
    ) -> SubmitOutcome:
        """End an admission ``admit`` left at the proof: ``proof_ok`` is the verifier's
        word on its range statements, ``balanced`` the batch's on its deferred
        balance proofs (``checked.excess_checks``). Without that word, or when it is
        no, the stateful rules run again and check them (the exact reason)."""
        tx_id = wanted.checked.dtx.tx_id
        held = self._in_admission.pop(tx_id, None)
        if held is None:
            # A block committed it, or rejected these very bytes, meanwhile (on_block).
            return Duplicate(tx_id)
        self._in_admission_bytes -= len(held)
        try:
            checked = self._balance_checked(wanted.checked, balanced)
        except TxRejected as exc:
            self._release(tx_id)
            return Rejected(tx_id, exc.reason.value, exc.detail)
        if not proof_ok:
            self._release(tx_id)
            return Rejected(tx_id, Reason.BAD_RANGE_PROOF.value, "range proof does not verify")
        self._cache.mark_verified(wanted.checked.statements)
        if wanted.generation != self._generation:
            # Prechecked against a pending set a block has replaced since: revalidate
            # against this one (the version -1 matches no PendingTxs).
            checked = replace(checked, pending_version=-1)
        return self._accept(checked, wanted.tx_bytes)

    def _balance_checked(self, checked: CheckedTx, balanced: bool) -> CheckedTx:
        """``checked`` if its deferred balance proofs verified (``balanced``), else its
        stateful rules again, checking them: ``TxRejected`` with its exact reason."""
        if not checked.excess_checks or balanced:
            return checked
        rechecked = self._pending.recheck(checked)
        for statement in rechecked.statements:  # a loan's may follow the state
            if statement not in checked.statements:
                verify_statement(statement, self._cache)
        return rechecked

    def abandon(self, wanted: ProofWanted) -> None:
        """Release an admission whose proof could not be checked (the verifier failed);
        the tx is neither accepted nor rejected, so its sender may try again."""
        held = self._in_admission.pop(wanted.checked.dtx.tx_id, None)
        if held is not None:
            self._in_admission_bytes -= len(held)
            self._release(wanted.checked.dtx.tx_id)

    def _accept(self, checked: CheckedTx, tx_bytes: bytes) -> SubmitOutcome:
        tx_id = checked.dtx.tx_id
        try:
            checked = self._pending.revalidate(checked)
            self._pending.accept(checked)
        except TxRejected as exc:
            self._release(tx_id)
            return Rejected(tx_id, exc.reason.value, exc.detail)
        self._entries[tx_id] = _Entry(checked, tx_bytes, fed=False)
        self._index.add(tx_id, checked.reads, checked.delta.keys())
        self._record_applied(checked, tx_bytes)
        self._unfed.append(tx_id)
        self._bytes += len(tx_bytes)
        if self._on_unfed is not None:
            self._on_unfed()
        return Accepted(tx_id)

    def _record_applied(self, checked: CheckedTx, tx_bytes: bytes) -> None:
        """Hand execution the stateful result it may reuse (``ledger.recorded_apply``)."""
        applied = checked.applied
        if self._stateless is not None and applied is not None:
            self._stateless.record_applied(tx_bytes, applied)

    def _hold(self, account: bytes, busy: Busy, now_ms: int) -> Busy:
        """``busy``, told to a client: its account gets the same until the wait ends."""
        if len(self._refused_until) >= MAX_TRACKED_ACCOUNTS:
            # Expired holds go; if that is not a tenth, the oldest tenth goes too, so a
            # flood of accounts costs one pass per tenth of the bound, not one per tx.
            live = [(a, e) for a, e in self._refused_until.items() if e[0] > now_ms]
            self._refused_until = dict(live[-(MAX_TRACKED_ACCOUNTS * 9 // 10) :])
        self._refused_until[account] = (now_ms + busy.retry_after_ms, busy.code)
        return busy

    def _still_refused(self, account: bytes, now_ms: int) -> Busy | None:
        """The busy answer ``account`` was given, while its Retry-After runs."""
        entry = self._refused_until.get(account)
        if entry is None:
            return None
        until_ms, code = entry
        if now_ms >= until_ms:
            del self._refused_until[account]
            return None
        return Busy(code, until_ms - now_ms)

    def _rate_limited(self, account: bytes, now_ms: int) -> int | None:
        """Milliseconds to wait if ``account`` is over its rate, else None (counts
        nothing: ``_count_admission`` does, once the tx has passed its checks).

        A token bucket in the form of GCRA (the generic cell rate algorithm): each
        account has a theoretical arrival time ``tat``, kept in units of 1/N ms
        (N = ``account_txs_per_window``, W = ``account_window_ms``) so that the
        arithmetic is exact. An admission moves it W/N ms on from ``max(tat, now)``;
        a tx is over the rate while ``tat`` is more than (N-1)·W/N ms ahead of now.
        So an account may send N at once, and N a window on average, and the state
        is one int an account. A sliding window (at most N in any W ms) refused a
        client whose average was well under the rate for a bunch of N+1, and held
        it a whole second: under attest load a bank's lane, bunched behind a slow
        answer, was refused again and again (docs/performance.md)."""
        tat = self._account_tat.get(account)
        if tat is None:
            return None
        limits = self.limits
        per_window = limits.account_txs_per_window
        ahead = tat - now_ms * per_window - (per_window - 1) * limits.account_window_ms
        if ahead <= 0:
            return None
        return max(MIN_RATE_RETRY_MS, -(-ahead // per_window))

    def _count_admission(self, account: bytes, now_ms: int) -> None:
        tat = self._account_tat.get(account)
        now = now_ms * self.limits.account_txs_per_window
        if tat is None:
            if len(self._account_tat) >= MAX_TRACKED_ACCOUNTS:
                self._prune_rates(now)  # a new dict
            tat = now
        self._account_tat[account] = max(tat, now) + self.limits.account_window_ms

    def _prune_rates(self, now: int) -> None:
        """Forget accounts whose bucket is full again (``tat`` passed: no state to
        keep); if that is not a tenth, the oldest tracked go down to nine tenths, so
        a flood of accounts costs one pass per tenth of the bound, not one per tx."""
        live = [(a, tat) for a, tat in self._account_tat.items() if tat > now]
        self._account_tat = dict(live[-(MAX_TRACKED_ACCOUNTS * 9 // 10) :])

    # --- feeding the core --------------------------------------------------------

    def take_unfed(self, max_txs: int) -> tuple[Request, ...]:
        """Up to ``max_txs`` accepted txs the core has not been given yet, oldest first."""
        requests: list[Request] = []
        unfed, entries = self._unfed, self._entries
        while unfed and len(requests) < max_txs:
            entry = entries.get(unfed.popleft())
            if entry is not None and not entry.fed:
                entry.fed = True
                request_id = request_id_of(entry.tx_bytes, self._genesis.chain_id)
                requests.append(Request(request_id, entry.tx_bytes))
        return tuple(requests)

    def unfed_count(self) -> int:
        return sum(1 for entry in self._entries.values() if not entry.fed)

    def refeed_all(self) -> None:
        """Hand every pending tx to the core again (after it restarted or caught up)."""
        for entry in self._entries.values():
            entry.fed = False
        self._unfed = deque(self._entries)
        if self._unfed and self._on_unfed is not None:
            self._on_unfed()

    # --- after a block -----------------------------------------------------------

    def note_committed(
        self,
        height: int,
        tx_ids: Iterable[bytes],
        state_writes: Mapping[bytes, bytes | None] | None = None,
    ) -> None:
        """The txs block ``height`` committed, and the state it wrote (None: not known;
        not changed after). If the next ``on_block`` moves from the height below to
        exactly ``height``, these are all the pending txs it must drop, so it skips a
        tx-index read per pending tx (most of a survivor's cost); and with
        ``state_writes`` it re-adds each survivor whose reads the block left as they
        were without looking them up (``ledger.pending_changes``)."""
        self._noted = (height, frozenset(tx_ids), state_writes)

    def on_block(
        self, state: StoreReader, *, executed: frozenset[bytes] = frozenset()
    ) -> list[tuple[bytes, TxRejected]]:
        """Rebuild over the new committed ``state``; the survivors that no longer fit.
        A tx whose exact bytes are in ``executed`` (a block rejected them) goes
        without a word: its request is spent, and the caller settles it."""
        noted, self._noted = self._noted, None
        if noted is not None and noted[0] == state.height() == self._state_height + 1:
            committed, writes = noted[1], noted[2]
            if writes is not None and not executed and self._advance(state, committed, writes):
                self.rebuilds["in_place"] += 1
                self._after_rebuild(committed.__contains__, executed)
                return []
            # Nothing held was committed before this block: admission refuses committed
            # txs, and each rebuild drops them. So a set lookup, not the tx index.
            is_committed: Callable[[bytes], bool] = committed.__contains__
            changes = None if writes is None else PendingChanges(writes)
        else:
            is_committed, changes = (lambda tx_id: state.tx_location(tx_id) is not None), None
        self.rebuilds["in_full"] += 1
        self._state = state
        self._state_height = state.height()
        self._pending = PendingTxs(state, self._genesis)
        self._generation += 1
        dropped: list[tuple[bytes, TxRejected]] = []
        survivors: OrderedDict[bytes, _Entry] = OrderedDict()
        # This loop runs for every pending tx a block: bound methods, no calls to spare.
        readmit = self._pending.readmit
        readmit_unchanged = self._pending.readmit_unchanged
        differing = changes.differing if changes is not None else _NO_KEYS
        survivor_bytes = 0
        for tx_id, entry in self._entries.items():
            old = entry.checked
            if is_committed(tx_id) or (executed and entry.tx_bytes in executed):
                self._release(tx_id)
                if changes is not None:
                    changes.removed(old.delta)
                continue
            reads = old.reads
            if changes is not None and reads is not None and differing.isdisjoint(reads):
                readmit_unchanged(old)  # it reads what it read: the same writes
                if not differing.isdisjoint(old.delta):
                    changes.kept(old.delta)
                survivors[tx_id] = entry
                survivor_bytes += len(entry.tx_bytes)
                continue
            try:
                # Found uncommitted just above, and the entries' ids are distinct.
                checked = readmit(old, duplicates_checked=True)
            except TxRejected as exc:
                dropped.append((tx_id, exc))
                self._release(tx_id)
                if changes is not None:
                    changes.removed(old.delta)
                continue
            if checked is not old:
                entry.checked = checked
                self._record_applied(checked, entry.tx_bytes)
                if changes is not None:  # rebased, or the rules ran again
                    changes.replaced(old.delta, checked.delta)
            elif changes is not None:
                changes.kept(old.delta)
            survivors[tx_id] = entry
            survivor_bytes += len(entry.tx_bytes)
        self._entries = survivors
        self._bytes = survivor_bytes
        self._index.rebuild(
            (tx_id, entry.checked.reads, entry.checked.delta.keys())
            for tx_id, entry in survivors.items()
        )
        self._after_rebuild(is_committed, executed)
        return dropped

    def _advance(
        self, state: StoreReader, committed: frozenset[bytes], writes: Mapping[bytes, bytes | None]
    ) -> bool:
        """The rebuild without a walk over the survivors, if the block left every
        survivor's reads as they were (``ledger.pending_index``): drop the committed
        txs from the pending view and move it onto ``state``. False (nothing
        changed) if some survivor may read otherwise."""
        entries, index, release = self._entries, self._index, self._release
        removed = entries.keys() & committed
        unwritten = index.unchanged_after(removed, writes, state)
        if unwritten is None:
            return False
        for tx_id in removed:
            self._bytes -= len(entries.pop(tx_id).tx_bytes)
            index.remove(tx_id)
            release(tx_id)
        self._pending.advance(state, removed, unwritten)
        self._state = state
        self._state_height = state.height()
        self._generation += 1
        return True

    def _after_rebuild(
        self, is_committed: Callable[[bytes], bool], executed: frozenset[bytes]
    ) -> None:
        """Either rebuild's end: txs at their proof check that the block took go, and
        the commit rate hears whether the mempool is still busy."""
        for tx_id in [
            t
            for t, held in self._in_admission.items()
            if is_committed(t) or (executed and held in executed)
        ]:
            self._in_admission_bytes -= len(self._in_admission.pop(tx_id))
            self._release(tx_id)
        if self._last_commit_ms is not None:  # at the block's commit, a moment ago
            self._commit_rate.observe(
                self._last_commit_ms, busy=bool(self._entries or self._in_admission)
            )
