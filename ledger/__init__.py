"""ledger: the rules of the chain, written as an executable spec.

Theory of operation
-------------------
State is a set of confidential outputs (owner, asset, commitment, memos) plus
accounts and loans. ``apply_block(state, block)`` is a plain function that
either returns the changes a block makes or rejects it with a stable reason
code. Everything signed or hashed is encoded canonically (``ledger.codec``)
and signed under a versioned domain tag and the chain id
(``ledger.identity``), so a signature can never be replayed in another context.
A ``Store`` persists each block and its state changes in one atomic batch.

Dependency rule: imports ``privacy`` only.
"""
