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

Dependency rule: this package imports no other package of ours.
"""
