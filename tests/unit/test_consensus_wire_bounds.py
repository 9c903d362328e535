"""Issue 8 §1.4: every message and WAL record fits the wire limit by construction.

Before, the default config allowed 31 MiB PRE-PREPAREs, and a NEW-VIEW carried
2f+1 VIEW-CHANGEs with full batches: 31.6 MiB with 16 slots of 500 x 1 KiB
requests, which wire.py (16 MiB) refused, so there could be no view change
under load. VIEW-CHANGE and NEW-VIEW now carry digests (PrePrepareHeader),
batches are fetched by digest, ``max_batch_bytes`` bounds a batch, and
ReplicaConfig refuses any setting under which some message or record could
exceed the limit (``consensus.bounds``).
"""

from __future__ import annotations

import pytest

from consensus.actions import Broadcast, ReportFault
from consensus.bounds import (
    REQUEST_FRAMING_BYTES,
    batch_bytes,
    largest_encodings,
)
from consensus.config import ReplicaConfig
from consensus.events import ClientBatchReady, MessageReceived
from consensus.messages import (
    MAX_REQUEST_ID_BYTES,
    Checkpoint,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    PrePrepareHeader,
    ProposalMetadata,
    Request,
    ViewChange,
)
from consensus.sim.fixtures import (
    TEST_CHAIN_ID,
    header,
    make_config,
    make_replica,
    pre_prepare,
    prepare,
    signed,
)
from consensus.sim.keys import public_key
from consensus.wire import MAX_WIRE_BYTES, U64_MAX, decode_message, encode_message

ISSUE_REQUEST_BYTES = 1024
ISSUE_BATCH = 500
ISSUE_WINDOW = 16


def config(nodes: int = 4, **overrides: int) -> ReplicaConfig:
    settings = {"checkpoint_interval": 8, "watermark_window": ISSUE_WINDOW}
    settings.update(overrides)
    return ReplicaConfig(
        chain_id=TEST_CHAIN_ID,
        validators=tuple(public_key(i) for i in range(nodes)),
        replica_id=0,
        **settings,
    )


def issue_batch(seq: int) -> tuple[Request, ...]:
    return tuple(
        Request(b"%032d" % (seq * ISSUE_BATCH + i), b"x" * ISSUE_REQUEST_BYTES)
        for i in range(ISSUE_BATCH)
    )


def test_the_issues_numbers_fit_and_a_full_new_view_is_small() -> None:
    max_batch_bytes = ISSUE_BATCH * (ISSUE_REQUEST_BYTES + 32 + REQUEST_FRAMING_BYTES)
    accepted = config(
        max_batch_size=ISSUE_BATCH,
        max_request_bytes=ISSUE_REQUEST_BYTES,
        max_batch_bytes=max_batch_bytes,
    )
    assert accepted.max_batch_bytes == max_batch_bytes
    # 3 VIEW-CHANGEs, each with 16 prepared certificates of 500 x 1 KiB batches.
    certs = tuple(
        PreparedCertificate(
            header(0, seq, issue_batch(seq)),
            (prepare(0, seq, issue_batch(seq), 1), prepare(0, seq, issue_batch(seq), 2)),
        )
        for seq in range(1, ISSUE_WINDOW + 1)
    )
    vcs = tuple(signed(ViewChange(1, 0, bytes(32), (), certs, s)) for s in (1, 2, 3))
    headers = tuple(
        signed(
            PrePrepareHeader(1, c.pre_prepare.seq, c.pre_prepare.digest, c.pre_prepare.metadata, 1)
        )
        for c in certs
    )
    nv = signed(NewView(1, vcs, headers, 1))
    encoded = encode_message(nv)
    assert len(encoded) < 64 << 10  # was 31.6 MiB with the batches inside
    assert decode_message(encoded) == nv
    # The batches themselves travel one per PRE-PREPARE, well inside the limit.
    full = encode_message(pre_prepare(0, 1, issue_batch(1)))
    assert len(full) <= largest_encodings(4, ISSUE_WINDOW, max_batch_bytes)["PrePrepare"]
    assert len(full) < MAX_WIRE_BYTES


def test_settings_that_could_build_an_oversized_message_are_refused() -> None:
    with pytest.raises(ValueError, match=r"a PrePrepare could take .* over the 16777216-byte"):
        config(max_batch_bytes=17 << 20)
    # The old default's worst case: 500 requests of 64 KiB (31 MiB per batch).
    with pytest.raises(ValueError, match="PrePrepare"):
        config(max_batch_bytes=500 * ((1 << 16) + MAX_REQUEST_ID_BYTES + REQUEST_FRAMING_BYTES))
    # Digests do not grow with batches, but n^2 x window does: 100 validators
    # with a 4096-slot window could build a NEW-VIEW of gigabytes.
    with pytest.raises(ValueError, match=r"a (ViewChange|NewView) could take"):
        config(
            nodes=100,
            checkpoint_interval=64,
            watermark_window=4096,
            request_id_window_heights=4096,
        )
    with pytest.raises(ValueError, match="at least one request"):
        config(max_request_bytes=1 << 16, max_batch_bytes=1 << 16)


def test_the_defaults_fit() -> None:
    sizes = largest_encodings(4, 16, config().max_batch_bytes)
    assert max(sizes.values()) <= MAX_WIRE_BYTES
    assert sizes["NewView"] < 64 << 10


@pytest.mark.parametrize(("nodes", "window"), [(4, 1), (4, 16), (7, 3), (19, 17)])
def test_the_bounds_equal_the_encoding_of_the_largest_instance(nodes: int, window: int) -> None:
    # The bounds grow arrays arithmetically; check that against the real codec.
    big = U64_MAX
    digest, signature = b"\xff" * 32, b"\xff" * 64
    top = PrePrepareHeader(big, big, digest, ProposalMetadata(big, big), big, signature)
    cert = PreparedCertificate(top, (Prepare(big, big, digest, big, signature),) * (nodes - 1))
    proof = (Checkpoint(big, digest, big, signature),) * nodes
    vc = ViewChange(big, big, digest, proof, (cert,) * window, big, signature)
    nv = NewView(big, (vc,) * nodes, (top,) * window, big, signature)
    sizes = largest_encodings(nodes, window, 1000)
    assert sizes["ViewChange"] == len(encode_message(vc))
    assert sizes["NewView"] == len(encode_message(nv))


def test_primary_cuts_batches_by_bytes_and_backups_refuse_a_batch_over_the_bound() -> None:
    one = len(b"r-00") + 300 + REQUEST_FRAMING_BYTES
    primary = make_replica(0, max_batch_size=4, max_request_bytes=300, max_batch_bytes=3 * one)
    requests = tuple(Request(b"r-%02d" % i, b"p" * 300) for i in range(6))
    sent = [a.message for a in primary.step(ClientBatchReady(requests)) if isinstance(a, Broadcast)]
    batches = [m.batch for m in sent if isinstance(m, PrePrepare)]
    assert [len(b) for b in batches] == [3, 3]
    assert all(batch_bytes(b) <= 3 * one for b in batches)
    backup = make_replica(1, max_batch_size=4, max_request_bytes=300, max_batch_bytes=3 * one)
    assert backup.step(MessageReceived(0, pre_prepare(0, 1, requests[:4]))) == [
        ReportFault("invalid_batch", 0, "batch over max_batch_bytes")
    ]


def test_the_default_batch_bound_is_8_mib() -> None:
    assert make_config(0).max_batch_bytes == 8 << 20
