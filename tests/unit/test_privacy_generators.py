"""Generators and Pedersen commitments against dalek's values (vectors file, derived section)."""

from __future__ import annotations

import hashlib

import pytest

from privacy import group as g
from privacy.generators import PEDERSEN_G, PEDERSEN_H, bulletproof_generators
from privacy.pedersen import commit

B = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
B_BLINDING = "8c9240b456a9e6dc65c377a1048d745f94a08cdb7f44cbcd7b46f34048871134"
G00 = "fc3b25801422672a6a8d3adb5d8457d4301fe92324b4fc56ae934c8713ddfe2d"
G01 = "ae817fdef62f713dd169dc8a26406f68be0bd3cd53652614636b0801567c4264"
H00 = "ba698f6dd08c501e32b55d2ee7259f6019d629fa2ba4d7039c5de157cba4df73"
G10 = "0eeebec183d151ded1e24320cf43c987617b36e77114788e5ae8ace41570b74b"


def test_pedersen_generators_match_dalek() -> None:
    assert PEDERSEN_G.hex() == B
    assert PEDERSEN_H.hex() == B_BLINDING
    assert g.hash_to_point(hashlib.sha3_512(PEDERSEN_G).digest()) == PEDERSEN_H


@pytest.mark.parametrize("bits", [8, 16, 32, 64])
def test_vector_generators_match_dalek_in_party_major_order(bits: int) -> None:
    g_vec, h_vec = bulletproof_generators(bits, 2)
    assert len(g_vec) == len(h_vec) == 2 * bits
    assert g_vec[0].hex() == G00
    assert g_vec[1].hex() == G01
    assert h_vec[0].hex() == H00
    assert g_vec[bits].hex() == G10


def test_chains_are_prefix_stable_and_distinct() -> None:
    g8, h8 = bulletproof_generators(8, 4)
    g64, h64 = bulletproof_generators(64, 4)
    for party in range(4):
        assert g8[party * 8 : party * 8 + 8] == g64[party * 64 : party * 64 + 8]
        assert h8[party * 8 : party * 8 + 8] == h64[party * 64 : party * 64 + 8]
    everything = set(g64) | set(h64) | {PEDERSEN_G, PEDERSEN_H}
    assert len(everything) == 2 * 64 * 4 + 2
    assert all(g.is_valid_point(p) and p != g.IDENTITY for p in everything)
    long_g, _ = bulletproof_generators(100, 1)
    assert long_g[:64] == g64[:64]
    assert bulletproof_generators(64, 4) is bulletproof_generators(64, 4)


def test_generator_arguments_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        bulletproof_generators(0, 1)
    with pytest.raises(ValueError, match="positive"):
        bulletproof_generators(8, 0)


def test_commit_is_homomorphic_and_matches_definition() -> None:
    c1 = commit(5, 11)
    c2 = commit(7, 13)
    assert g.add(c1, c2) == commit(12, 24)
    assert commit(5, 11) == g.add(g.mul(5, PEDERSEN_G), g.mul(11, PEDERSEN_H))
    assert commit(0, 0) == g.IDENTITY
    assert commit(1, 0) == PEDERSEN_G
    assert commit(0, 1) == PEDERSEN_H
    assert commit(-1, 0) == g.neg(PEDERSEN_G)
    assert commit(3, 4) != commit(4, 3)
