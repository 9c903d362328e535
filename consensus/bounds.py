"""Why every message and write-ahead record fits the wire limit (issue 8 §1.4).

``consensus/wire.py`` refuses any encoding over ``MAX_WIRE_BYTES`` (16 MiB),
for messages and WAL records alike, so a replica that built a larger one could
neither send it nor restart from its log. ``ReplicaConfig`` therefore refuses
any setting under which some message or record could exceed the limit.

The proof is by construction, not by estimate: ``largest_encodings`` builds the
largest instance of every message and record the protocol allows and encodes
it with the real codec. "Largest" means:

* every integer is 2^64 - 1 (msgpack's widest), digests and roots 32 bytes,
  signatures the longest the wire carries (64 bytes, ed25519's);
* a batch encodes to at most ``max_batch_bytes + BATCH_FRAMING_BYTES``, where
  ``max_batch_bytes`` bounds ``batch_bytes`` (requests plus their framing),
  which primaries respect and backups check; so do the requests a backup
  relays to the primary (FORWARDED-REQUESTS);
* a checkpoint proof has at most n signers (they must be distinct);
* a prepared certificate has at most n - 1 prepares (distinct, not the
  primary), and a VIEW-CHANGE at most one per seq of the window;
* a NEW-VIEW carries at most n VIEW-CHANGEs (distinct senders) and at most
  one re-issued pre-prepare per seq of the window: the plan runs from the
  highest stable checkpoint among them, and no certificate lies beyond
  its sender's window, which ends at or below that checkpoint plus the window.

VIEW-CHANGE and NEW-VIEW carry digests, not batches (PBFT §4.4), so only the
PRE-PREPARE, the BATCH-REPLY and the primary's vote record of a PRE-PREPARE
grow with the batch; the rest grow with n and the window.

The same counts, with ``max_batch_size`` requests per batch or relay, bound
every array the decoder accepts from a peer (``wire_limits``): bytes alone
would let a relay of 16 MiB carry millions of requests.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from consensus.messages import (
    DIGEST_BYTES,
    NULL_BATCH,
    Batch,
    BatchReply,
    Checkpoint,
    Commit,
    FetchBatch,
    ForwardedRequests,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    PrePrepareHeader,
    ProposalMetadata,
    Status,
    ViewChange,
)
from consensus.persistence import (
    BatchRecord,
    NewViewRecord,
    PreparedRecord,
    StableCheckpointRecord,
    ViewRecord,
    VoteRecord,
)
from consensus.wire import (
    MAX_SIGNATURE_BYTES,
    MAX_WIRE_BYTES,
    U64_MAX,
    WireLimits,
    encode_message,
    encode_record,
)

if TYPE_CHECKING:
    from consensus.config import ReplicaConfig  # config imports this module

REQUEST_FRAMING_BYTES = 11
"""msgpack framing of one request: a 2-array (1 byte) and two bin headers (<= 5 each)."""
BATCH_FRAMING_BYTES = 5
"""msgpack framing of a batch: an array header of at most 5 bytes."""


def batch_bytes(batch: Batch) -> int:
    """The size ``max_batch_bytes`` bounds: every request with its framing."""
    return sum(len(r.request_id) + len(r.payload) + REQUEST_FRAMING_BYTES for r in batch)


def array_header_bytes(count: int) -> int:
    """msgpack's array header: fixarray, array16 or array32."""
    return 1 if count < 16 else 3 if count < 1 << 16 else 5


def grown(empty_bytes: int, item_bytes: int, count: int) -> int:
    """Size of an encoding whose one array (empty in ``empty_bytes``) holds
    ``count`` items of ``item_bytes`` each: msgpack concatenates them."""
    return empty_bytes + count * item_bytes + array_header_bytes(count) - 1


@lru_cache(maxsize=64)
def largest_encodings(
    replica_count: int, watermark_window: int, max_batch_bytes: int
) -> dict[str, int]:
    """Upper bounds, in bytes, of the encoding of each message and record kind.

    Each bound encodes the instance with its arrays empty and with one item,
    and grows the difference to the largest count (exact for msgpack), so the
    cost does not grow with n^2 times the window.
    """
    n, window = replica_count, watermark_window
    big = U64_MAX
    digest = b"\xff" * DIGEST_BYTES
    signature = b"\xff" * MAX_SIGNATURE_BYTES
    metadata = ProposalMetadata(big, big)
    # The empty batch encodes to one byte; a full one to at most this many more.
    batch_growth = BATCH_FRAMING_BYTES + max_batch_bytes - 1
    pre_prepare = PrePrepare(big, big, digest, NULL_BATCH, metadata, big, signature)
    header = PrePrepareHeader(big, big, digest, metadata, big, signature)
    prepare = Prepare(big, big, digest, big, signature)
    checkpoint = Checkpoint(big, digest, big, signature)

    def size(message: Message) -> int:
        return len(encode_message(message))

    def item_bytes(empty: Message, one: Message) -> int:
        return size(one) - size(empty)

    cert_empty = PreparedCertificate(header, ())
    cert_one = PreparedCertificate(header, (prepare,))
    vc_empty = ViewChange(big, big, digest, (), (), big, signature)
    vc_no_prepares = replace(vc_empty, prepared=(cert_empty,))
    checkpoint_item = item_bytes(vc_empty, replace(vc_empty, checkpoint_proof=(checkpoint,)))
    cert_item = item_bytes(vc_empty, vc_no_prepares)
    prepare_item = item_bytes(vc_no_prepares, replace(vc_empty, prepared=(cert_one,)))
    # Each certificate's prepares array grows like any other array.
    cert_bytes = grown(cert_item, prepare_item, n - 1)
    vc_bytes = (
        grown(size(vc_empty), checkpoint_item, n)
        + grown(size(vc_empty), cert_bytes, window)
        - size(vc_empty)
    )
    nv_empty = NewView(big, (), (), big, signature)
    header_item = item_bytes(nv_empty, replace(nv_empty, pre_prepares=(header,)))
    vc_item = item_bytes(nv_empty, replace(nv_empty, view_changes=(vc_empty,)))
    vc_item += vc_bytes - size(vc_empty)
    nv_bytes = grown(size(nv_empty), header_item, window) + grown(0, vc_item, n)
    record_overhead = len(encode_record(VoteRecord(nv_empty))) - size(nv_empty)
    nv_record_overhead = len(encode_record(NewViewRecord(nv_empty))) - size(nv_empty)
    cert_record = len(encode_record(PreparedRecord(cert_empty)))
    cert_record_one = len(encode_record(PreparedRecord(cert_one)))
    proof_record = StableCheckpointRecord(big, digest, ())
    proof_record_one = StableCheckpointRecord(big, digest, (checkpoint,))
    reply = BatchReply(big, digest, NULL_BATCH, metadata, big, signature)
    relay = ForwardedRequests(big, NULL_BATCH, big, signature)
    return {
        "PrePrepare": size(pre_prepare) + batch_growth,
        "Prepare": size(prepare),
        "Commit": size(Commit(big, big, digest, big, signature)),
        "Checkpoint": size(checkpoint),
        "ViewChange": vc_bytes,
        "NewView": nv_bytes,
        "FetchBatch": size(FetchBatch(big, digest, big, signature)),
        "Status": size(Status(big, big, big, signature)),
        "BatchReply": size(reply) + batch_growth,
        "ForwardedRequests": size(relay) + batch_growth,
        "ViewRecord": len(encode_record(ViewRecord(big, True))),
        "BatchRecord": len(encode_record(BatchRecord(big, digest, NULL_BATCH, metadata)))
        + batch_growth,
        "VoteRecord(PrePrepare)": len(encode_record(VoteRecord(pre_prepare))) + batch_growth,
        "VoteRecord(ViewChange)": vc_bytes + record_overhead,
        "VoteRecord(NewView)": nv_bytes + record_overhead,
        "NewViewRecord": nv_bytes + nv_record_overhead,
        "PreparedRecord": grown(cert_record, cert_record_one - cert_record, n - 1),
        "StableCheckpointRecord": grown(
            len(encode_record(proof_record)),
            len(encode_record(proof_record_one)) - len(encode_record(proof_record)),
            n,
        ),
    }


def wire_fit_problem(replica_count: int, watermark_window: int, max_batch_bytes: int) -> str | None:
    """Which message or record could exceed the wire limit, or None if none can."""
    sizes = largest_encodings(replica_count, watermark_window, max_batch_bytes)
    for kind, size in sizes.items():
        if size > MAX_WIRE_BYTES:
            return f"a {kind} could take {size} bytes, over the {MAX_WIRE_BYTES}-byte wire limit"
    return None


def wire_limits(config: ReplicaConfig) -> WireLimits:
    """The counts above for ``config``: pass them to ``decode_message`` for a peer's bytes."""
    return WireLimits(
        max_batch_size=config.max_batch_size,
        replica_count=config.replica_count,
        watermark_window=config.watermark_window,
    )
