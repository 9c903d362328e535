"""Tx envelope, body records, ids and strict decoding (no proofs needed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import encode_value
from ledger.identity import SigningIdentity, signing_bytes
from ledger.reasons import Reason, TxRejected
from ledger.tx import (
    BODY_TYPES,
    TAG_ATTEST,
    TAG_REGISTER_ACCOUNT,
    TAG_TRANSFER,
    AttestBody,
    RegisterAccountBody,
    TransferBody,
    Tx,
    TxOutput,
    decode_tx,
    encoded_size,
    output_id_of,
    split_output_id,
    tx_id_of,
)

CHAIN = bytes(range(32))
OTHER_CHAIN = bytes(range(1, 33))
MEMBER = SigningIdentity.from_seed(b"\x05" * 32)


def attest_tx(nonce: int = 1, chain: bytes = CHAIN) -> Tx:
    body = AttestBody(MEMBER.public_key, "report", b"\x33" * 32, nonce).encode()
    return Tx(TAG_ATTEST, body, MEMBER.sign(TAG_ATTEST, chain, body), b"")


def test_every_tag_is_a_valid_versioned_domain_tag() -> None:
    for tag in BODY_TYPES:
        signing_bytes(tag, CHAIN, b"")  # raises on a malformed tag
        assert tag.startswith(b"veil/tx/") and tag.endswith(b"/v1")


def test_decode_round_trip_and_id() -> None:
    tx = attest_tx()
    decoded = decode_tx(tx.encode(), CHAIN, max_tx_bytes=65536)
    assert decoded.tx == tx
    assert decoded.body == AttestBody(MEMBER.public_key, "report", b"\x33" * 32, 1)
    assert decoded.signer == MEMBER.public_key
    assert decoded.tx_id == tx_id_of(TAG_ATTEST, tx.body, CHAIN)
    assert decoded.size_bytes == len(tx.encode())


def test_tx_id_binds_kind_chain_and_body_but_not_the_witness() -> None:
    tx = attest_tx()
    ids = {
        tx_id_of(TAG_ATTEST, tx.body, CHAIN),
        tx_id_of(TAG_ATTEST, tx.body, OTHER_CHAIN),
        tx_id_of(TAG_REGISTER_ACCOUNT, tx.body, CHAIN),
        tx_id_of(TAG_ATTEST, attest_tx(nonce=2).body, CHAIN),
    }
    assert len(ids) == 4
    with_witness = Tx(tx.kind, tx.body, tx.signature, b"\x01")
    a = decode_tx(tx.encode(), CHAIN, max_tx_bytes=65536).tx_id
    b = decode_tx(with_witness.encode(), CHAIN, max_tx_bytes=65536).tx_id
    assert a == b


def test_output_ids_are_distinct_per_index_and_tx() -> None:
    ids = {output_id_of(t, i) for t in (b"\x01" * 32, b"\x02" * 32) for i in range(4)}
    assert len(ids) == 8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.MALFORMED),
        (b"\xc1", Reason.MALFORMED),
        (encode_value((TAG_ATTEST, b"", b"\x00" * 64)), Reason.MALFORMED),
        (Tx(b"veil/tx/loan/v1", b"\x90", b"\x00" * 64, b"").encode(), Reason.UNKNOWN_KIND),
        (Tx(TAG_ATTEST, b"\x90", b"\x00" * 64, b"").encode(), Reason.MALFORMED),
        (Tx(TAG_ATTEST, attest_tx().body + b"\x00", b"\x00" * 64, b"").encode(), Reason.MALFORMED),
        (
            Tx(TAG_TRANSFER, encode_value((b"\x01" * 31,)), b"\x00" * 64, b"").encode(),
            Reason.MALFORMED,
        ),
        (Tx(TAG_ATTEST, b"\x00" * 70000, b"\x00" * 64, b"").encode(), Reason.TOO_LARGE),
    ],
)
def test_decode_rejections(data: bytes, reason: Reason) -> None:
    with pytest.raises(TxRejected) as info:
        decode_tx(data, CHAIN, max_tx_bytes=65536)
    assert info.value.reason is reason


def test_body_field_limits_are_enforced_by_decoding() -> None:
    output = TxOutput(b"\x01" * 32, b"\x02" * 32, b"m" * 200, b"a" * 200)
    too_many_outputs = TransferBody(
        b"\x01" * 32, b"\x02" * 32, (b"\x03" * 32,), (output,) * 17, b""
    )
    tx = Tx(TAG_TRANSFER, too_many_outputs.encode(), b"\x00" * 64, b"")
    with pytest.raises(TxRejected) as info:
        decode_tx(tx.encode(), CHAIN, max_tx_bytes=1 << 20)
    assert info.value.reason is Reason.MALFORMED
    long_memo = TxOutput(b"\x01" * 32, b"\x02" * 32, b"m" * 380, b"")
    body = TransferBody(b"\x01" * 32, b"\x02" * 32, (), (long_memo,), b"")
    tx = Tx(TAG_TRANSFER, body.encode(), b"\x00" * 64, b"")
    with pytest.raises(TxRejected):
        decode_tx(tx.encode(), CHAIN, max_tx_bytes=1 << 20)


def test_register_account_body_round_trip() -> None:
    body = RegisterAccountBody(MEMBER.public_key, b"\x07" * 32, b"\x08" * 32, 9, b"\x09" * 64)
    assert RegisterAccountBody.decode(body.encode()) == body


def test_register_account_body_without_a_proof_of_possession_is_malformed() -> None:
    old_layout = encode_value((MEMBER.public_key, b"\x07" * 32, b"\x08" * 32, 9))
    tx = Tx(TAG_REGISTER_ACCOUNT, old_layout, b"\x00" * 64, b"")
    with pytest.raises(TxRejected) as info:
        decode_tx(tx.encode(), CHAIN, max_tx_bytes=1 << 20)
    assert info.value.reason is Reason.MALFORMED


def test_the_proof_of_possession_is_part_of_the_tx_id() -> None:
    bodies = [
        RegisterAccountBody(MEMBER.public_key, b"\x07" * 32, b"\x08" * 32, 9, pop).encode()
        for pop in (b"\x09" * 64, b"\x0a" * 64)
    ]
    ids = {tx_id_of(TAG_REGISTER_ACCOUNT, body, CHAIN) for body in bodies}
    assert len(ids) == 2


def test_rejection_carries_reason_detail_and_index() -> None:
    err = TxRejected(Reason.NOT_OWNER, "input 0")
    located = err.at(3)
    assert located.reason is Reason.NOT_OWNER and located.index == 3
    assert str(located) == "NOT_OWNER (tx #3): input 0"
    assert Reason("DOUBLE_SPEND") is Reason.DOUBLE_SPEND


@given(
    kind=st.binary(max_size=64),
    body=st.binary(max_size=70_000),
    witness=st.binary(max_size=300),
)
@settings(max_examples=30)
def test_encoded_size_matches_the_encoding(kind: bytes, body: bytes, witness: bytes) -> None:
    tx = Tx(kind, body, b"\x00" * 64, witness)
    assert encoded_size(tx) == len(tx.encode())


def test_output_id_names_its_creating_tx() -> None:
    tx_id = bytes(range(32))
    assert split_output_id(output_id_of(tx_id, 5)) == (tx_id, 5)
    with pytest.raises(ValueError):
        output_id_of(tx_id, 16)
    with pytest.raises(ValueError):
        output_id_of(tx_id[:31], 0)
    with pytest.raises(ValueError):
        split_output_id(tx_id)
