"""What ``veil audit`` (and the devnet demo) needs beyond ``ledger.auditor``: owners'
memo keys, read from the node.

The regulator's client has blocks but no state. ``ledger.auditor.Auditor`` checks
each owner memo against its owner's registered memo key (the audit memo discloses
the owner memo's ephemeral key, so the regulator can open the owner memo and see
whether it opens the output's commitment); ``ApiMemoKeys`` gives it those keys from
``GET /v1/accounts/{pk}``, each read once.
"""

from __future__ import annotations

from client.sdk import Client, VeilApiError


class ApiMemoKeys:
    """``owner -> registered memo key | None`` for ``Auditor.check_owner_memos``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._known: dict[bytes, bytes | None] = {}

    def __call__(self, owner: bytes) -> bytes | None:
        if owner not in self._known:
            try:
                self._known[owner] = self._client.account(owner).memo_public_key
            except VeilApiError as exc:
                if exc.code != "ACCOUNT_NOT_FOUND":
                    raise
                self._known[owner] = None  # nobody can open the memo as its owner
        return self._known[owner]
