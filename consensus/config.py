"""Static configuration of one replica: the validator set and the protocol knobs."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.bounds import REQUEST_FRAMING_BYTES, wire_fit_problem
from consensus.messages import MAX_REQUEST_ID_BYTES
from consensus.quorum import max_faulty, quorum_size, weak_quorum_size

GENESIS_STATE_ROOT = bytes(32)
"""State root at height 0 unless the configuration says otherwise."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """Everything a replica needs to know that never changes while it runs.

    ``validators`` are public keys; a replica id is an index into this tuple,
    and the injected ``verify`` receives the public key.
    """

    chain_id: bytes
    validators: tuple[bytes, ...]
    replica_id: int
    checkpoint_interval: int = 8
    watermark_window: int = 16
    view_change_timeout_ticks: int = 40
    max_view_change_timeout_ticks: int = 640
    view_bound: int = 64
    retransmit_interval_ticks: int = 10
    max_batch_size: int = 500
    max_request_bytes: int = 1 << 16
    # Bounds ``bounds.batch_bytes`` of a batch (requests and their framing),
    # so a PRE-PREPARE always fits the wire (16 MiB); see ``consensus.bounds``.
    max_batch_bytes: int = 8 << 20
    max_checkpoints_per_sender: int = 4
    genesis_state_root: bytes = GENESIS_STATE_ROOT
    request_id_window_heights: int = 256
    """Committed request ids are deduplicated for this many heights (see
    ``consensus.request_window``); at least one watermark window."""
    signature_bytes: int = 64
    """Length of every validator signature (ed25519: 64); others are malformed."""
    max_inflight_batches: int | None = None
    """As primary, propose a new batch only while fewer than this many of its
    proposals wait to execute (``None``: the watermark window is the only bound).
    Requests that arrive meanwhile wait and go in the next, larger batch."""
    batch_cut_ticks: int = 0
    """As primary, propose a batch short of ``max_batch_size`` only once its oldest
    request has waited this many ticks (0: at once). Below saturation blocks then
    gather a tick's requests and share each block's fixed cost; at saturation
    requests wait for room longer than that anyway, so a freed slot is filled at
    once."""

    def __post_init__(self) -> None:
        n = len(self.validators)
        if n < 4 or n != 3 * max_faulty(n) + 1:
            raise ValueError(f"need n = 3f+1 >= 4 validators, got {n}")
        if len(set(self.validators)) != n:
            raise ValueError("validator keys must be distinct")
        if not 0 <= self.replica_id < n:
            raise ValueError(f"replica_id {self.replica_id} is not a validator index")
        if self.checkpoint_interval < 1:
            raise ValueError("checkpoint_interval must be positive")
        # The window must hold at least two checkpoint intervals so the primary
        # can keep proposing while the last checkpoint becomes stable.
        if (
            self.watermark_window < 2 * self.checkpoint_interval
            or self.watermark_window % self.checkpoint_interval
        ):
            raise ValueError("watermark_window must be a multiple of 2+ checkpoint intervals")
        if not 1 <= self.view_change_timeout_ticks <= self.max_view_change_timeout_ticks:
            raise ValueError("need 1 <= view_change_timeout_ticks <= the cap")
        if self.view_bound < 1 or self.retransmit_interval_ticks < 1:
            raise ValueError("view_bound and retransmit_interval_ticks must be positive")
        if type(self.genesis_state_root) is not bytes or len(self.genesis_state_root) != 32:
            raise ValueError("genesis_state_root must be 32 bytes")
        if self.request_id_window_heights < self.watermark_window:
            raise ValueError("request_id_window_heights must cover the watermark window")
        if not 1 <= self.signature_bytes <= 64:
            raise ValueError("signature_bytes must be 1..64 (the wire carries at most 64)")
        if self.max_inflight_batches is not None and not (
            type(self.max_inflight_batches) is int and self.max_inflight_batches >= 1
        ):
            raise ValueError("max_inflight_batches must be None or a positive int")
        if type(self.batch_cut_ticks) is not int or self.batch_cut_ticks < 0:
            raise ValueError("batch_cut_ticks must be an int >= 0")
        if self.max_batch_size < 1 or self.max_checkpoints_per_sender < 2:
            raise ValueError("max_batch_size >= 1 and max_checkpoints_per_sender >= 2")
        largest_request = self.max_request_bytes + MAX_REQUEST_ID_BYTES + REQUEST_FRAMING_BYTES
        if self.max_batch_bytes < largest_request:
            raise ValueError("max_batch_bytes must hold at least one request of max_request_bytes")
        problem = wire_fit_problem(n, self.watermark_window, self.max_batch_bytes)
        if problem is not None:
            raise ValueError(problem)

    @property
    def replica_count(self) -> int:
        return len(self.validators)

    @property
    def faulty(self) -> int:
        return max_faulty(len(self.validators))

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.validators))

    @property
    def weak_quorum(self) -> int:
        return weak_quorum_size(len(self.validators))
