"""Adversarial review of memos: no secret (value, blinding, key) in a repr or an error message."""

from __future__ import annotations

import pytest

from privacy import group
from privacy.memo import MemoError, Opening, generate_memo_keypair, open_memo, seal_memo
from privacy.pedersen import commit

ASSET = bytes(range(32))


def test_opening_repr_hides_value_and_blinding() -> None:
    blinding = group.random_scalar()
    opening = Opening(987_654_321, blinding, ASSET, b"note")
    for text in (repr(opening), str(opening)):
        assert "987654321" not in text
        assert str(blinding) not in text and hex(blinding)[2:] not in text
    assert "Opening(" in repr(opening) and "note" not in repr(opening)
    # Equality and fields are unchanged.
    assert opening == Opening(987_654_321, blinding, ASSET, b"note")
    assert (opening.value, opening.blinding) == (987_654_321, blinding)


def test_opening_errors_do_not_echo_the_amount() -> None:
    with pytest.raises(ValueError) as err:
        Opening(-123_456_789, 1, ASSET)  # e.g. a change output that went negative
    assert "123456789" not in str(err.value)
    with pytest.raises(ValueError) as err:
        Opening(2**64 + 555, 1, ASSET)
    assert str(2**64 + 555) not in str(err.value)


def test_memo_errors_carry_no_secrets() -> None:
    private, public = generate_memo_keypair()
    blinding = group.random_scalar()
    opening = Opening(4242, blinding, ASSET)
    memo = seal_memo(opening, public)
    wrong = commit(4243, blinding)
    with pytest.raises(MemoError) as err:
        open_memo(memo, private, wrong)
    assert err.value.reason == "OPENING_MISMATCH"
    text = str(err.value) + repr(err.value)
    assert "4242" not in text and str(blinding) not in text and private.hex() not in text
    with pytest.raises(MemoError) as undecryptable:
        open_memo(memo, generate_memo_keypair()[0], opening.commitment())
    assert private.hex() not in repr(undecryptable.value)
