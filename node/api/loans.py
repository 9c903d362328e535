"""``/v1/borrowers/{pk}/loans?height=h`` and ``/v1/loans/{id}``: loans with hidden amounts.

A loan is shown with its public terms, status, overdue flag and its principal
and outstanding *commitments*, never an amount. Both routes answer for any
height the store retains (``Store.state_at``, the last 1024 heights by
default, ``[node] state_history_heights``; docs/loans.md "How far back"), the
tip when no ``height`` is given.
The borrower list comes with the block hash and commit certificate of that
height, so a verifier of an exposure proof knows which block the loans are of.
"""

from __future__ import annotations

from aiohttp import web

from ledger.loans import LoanRecord, get_loan, loans_of
from ledger.state import StateReader
from node.api.blocks import MAX_HEIGHT
from node.api.context import services_of
from node.api.errors import ApiCode, ApiError
from node.api.outputs import PUBLIC_KEY_BYTES
from node.api.params import check_known_params, parse_hex, parse_int
from node.api.views import Json, certificate_view
from node.services import NodeServices

LOAN_ID_BYTES = 32
"""A loan id is its originating tx id."""
STATUS_ACTIVE = "active"
STATUS_CLOSED = "closed"


def loan_view(loan_id: bytes, loan: LoanRecord, height: int) -> Json:
    """The loan as of ``height``: the names the explorer and the SDK read."""
    terms = loan.terms
    return {
        "id": loan_id.hex(),
        "lender": loan.lender.hex(),
        "borrower": loan.borrower.hex(),
        "asset": loan.asset.hex(),
        "rate_bps": terms.rate_bps,
        "period_blocks": terms.period_blocks,
        "maturity_height": terms.maturity_height,
        "purpose": terms.purpose,
        "principal_commitment": loan.principal.hex(),
        "outstanding_commitment": loan.outstanding.hex(),
        "status": STATUS_CLOSED if loan.closed else STATUS_ACTIVE,
        "overdue": loan.overdue(height),
        "originated_height": loan.originated_height,
        "accrued_periods": loan.accrued_periods,
        "closed_height": loan.closed_height if loan.closed else None,
    }


def _height_and_state(services: NodeServices, request: web.Request) -> tuple[int, StateReader]:
    """The ``height`` query parameter (default: the tip) and the state after that block."""
    store = services.store
    text = request.query.get("height")
    height = store.height() if text is None else parse_int(text, "height", low=0, high=MAX_HEIGHT)
    state = store.state_at(height)
    if state is None:
        raise ApiError(
            ApiCode.HEIGHT_NOT_RETAINED,
            f"height {height} is not retained: this node answers heights "
            f"{store.history_floor()} to {store.height()}",
        )
    return height, state


async def list_borrower_loans(request: web.Request) -> web.Response:
    """Every loan the borrower → loans index lists at ``height`` (closed ones too)."""
    check_known_params(request.query, frozenset({"height"}))
    borrower = parse_hex(request.match_info["public_key"], PUBLIC_KEY_BYTES, "public key")
    services = services_of(request)
    height, state = _height_and_state(services, request)
    store = services.store
    body: Json = {
        "borrower": borrower.hex(),
        "height": height,
        "block_hash": (store.block_hash_at(height) or b"").hex(),
        "certificate": certificate_view(store.certificate_at(height) or b""),
        "loans": [loan_view(lid, loan, height) for lid, loan in loans_of(state, borrower)],
    }
    return web.json_response(body)


async def get_loan_view(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset({"height"}))
    loan_id = parse_hex(request.match_info["loan_id"], LOAN_ID_BYTES, "loan id")
    height, state = _height_and_state(services_of(request), request)
    loan = get_loan(state, loan_id)
    if loan is None:
        raise ApiError(ApiCode.LOAN_NOT_FOUND, f"no loan with that id at height {height}")
    return web.json_response(loan_view(loan_id, loan, height) | {"height": height})
