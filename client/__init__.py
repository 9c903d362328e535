"""client: the Python SDK, the wallet and the ``veil`` command line.

Theory of operation
-------------------
Clients hold their own keys, build and sign transactions locally (with the
ledger's encoding and the privacy package's proofs) and talk to nodes only
over HTTP. A wallet learns its hidden amounts by opening the memos sealed to
its key and checking each opening against the on-chain commitment.

Dependency rule: imports ``ledger`` and ``privacy``; reaches nodes over HTTP only.
"""
