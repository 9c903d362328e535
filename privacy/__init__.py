"""privacy: the cryptography that keeps amounts hidden but checkable.

Theory of operation
-------------------
Amounts never appear on chain. A value ``v`` is committed as the Pedersen
commitment ``C = v·G + r·H`` over Ristretto255 (libsodium via ``rbcl``), which
hides ``v`` (``r`` is uniform) and binds it (nobody knows log_G H). Nodes check
that transactions conserve value by adding commitments, and that no output is
negative by Bulletproofs range proofs, verified in batches so the generator
terms are paid once per block instead of once per proof. The owner and the
auditor learn ``(v, r)`` from memos sealed to their X25519 keys.

Points cross every boundary as canonical RFC 9496 encodings: ``privacy.group``
refuses any other (bit 255 set included, which the bundled libsodium would
accept), and no verifier raises on hostile input; it returns False or a
reason (docs/privacy.md).

Dependency rule: this package imports no other package of ours.
"""
