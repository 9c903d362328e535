"""``/openapi.json``: the API's OpenAPI 3.1 description, maintained by hand.

Hand-maintained on purpose: it is the contract clients code against, so a
change to it should be a deliberate edit reviewed with the handler. Tests
check it against ``routes.ROUTES`` both ways, and schemathesis checks the
served responses against these schemas.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api.params import check_known_params

Schema = dict[str, object]

_HEX32: Final = "^[0-9a-f]{64}$"
_HEX33: Final = "^[0-9a-f]{66}$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


def _errors(*statuses: int) -> dict[str, Schema]:
    text = {
        400: "Bad request (malformed input or an unknown query parameter; see the error code)",
        404: "Not found",
        409: "Conflicts with the chain (double spend, replayed nonce...)",
        410: "The height is outside the range of states this node keeps",
        413: "Body or batch too large",
        415: "Unsupported content type",
        422: "A well-formed tx the ledger rules refuse",
        429: "Rate limited; see Retry-After",
        503: "Busy or stopped; see Retry-After",
    }
    return {str(status): _error(text[status]) for status in statuses}


def _hex_param(name: str, where: str, pattern: str, description: str) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


_NULLABLE_HEX32: Final[Schema] = {"type": ["string", "null"], "pattern": _HEX32}
_HEX32_SCHEMA: Final[Schema] = {"type": "string", "pattern": _HEX32}
_UINT: Final[Schema] = {"type": "integer", "minimum": 0}

_SCHEMAS: Final[dict[str, Schema]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "retry_after_ms": {"type": "integer", "minimum": 1},
                },
            },
            "id": _HEX32_SCHEMA,
        },
    },
    "TxSubmitted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": _HEX32_SCHEMA,
            "status": {"enum": ["pending", "committed", "rejected"]},
        },
    },
    "TxBatchResult": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {"type": "array", "items": {"oneOf": [_ref("TxSubmitted"), _ref("Error")]}}
        },
    },
    "Certificate": {
        "type": ["object", "null"],
        "required": ["view", "seq", "digest", "commits"],
        "properties": {
            "view": _UINT,
            "seq": _UINT,
            "digest": _HEX32_SCHEMA,
            "commits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sender", "signature"],
                    "properties": {"sender": _UINT, "signature": {"type": "string"}},
                },
            },
        },
    },
    "TxStatus": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": _HEX32_SCHEMA,
            "status": {"enum": ["pending", "committed", "rejected"]},
            "height": {"type": ["integer", "null"], "minimum": 0},
            "index": _UINT,
            "block_hash": _HEX32_SCHEMA,
            "certificate": _ref("Certificate"),
            "reason": {"type": "string"},
        },
    },
    "OutputRef": {
        "type": "object",
        "required": ["id", "owner", "commitment"],
        "properties": {
            "id": {"type": "string", "pattern": _HEX33},
            "owner": _HEX32_SCHEMA,
            "commitment": _HEX32_SCHEMA,
        },
    },
    "BlockTx": {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
            "id": _HEX32_SCHEMA,
            "kind": {"type": "string"},
            "signer": _HEX32_SCHEMA,
            "asset": _HEX32_SCHEMA,
            "inputs": {"type": "array", "items": {"type": "string", "pattern": _HEX33}},
            "outputs": {"type": "array", "items": _ref("OutputRef")},
            "proof_bytes": {
                "description": "Bytes of the tx's range proofs (issues, transfers, loans)",
                **_UINT,
            },
            "account": _HEX32_SCHEMA,
            "memo_public_key": _HEX32_SCHEMA,
            "loan_id": _HEX32_SCHEMA,
            "lender": _HEX32_SCHEMA,
            "borrower": _HEX32_SCHEMA,
            "rate_bps": _UINT,
            "period_blocks": _UINT,
            "maturity_height": _UINT,
            "purpose": {"type": "string"},
            "period": _UINT,
            "interest_commitment": _HEX32_SCHEMA,
        },
        "not": {"required": ["amount"]},
    },
    "Block": {
        "type": "object",
        "required": ["height", "hash", "genesis", "header", "txs", "certificate"],
        "properties": {
            "height": _UINT,
            "hash": _HEX32_SCHEMA,
            "genesis": {"type": "boolean"},
            "header": {
                "type": ["object", "null"],
                "required": [
                    "version",
                    "height",
                    "prev_hash",
                    "tx_root",
                    "state_root",
                    "proposer",
                    "view",
                    "timestamp_ms",
                ],
                "properties": {
                    "version": _UINT,
                    "height": _UINT,
                    "prev_hash": _HEX32_SCHEMA,
                    "tx_root": _HEX32_SCHEMA,
                    "state_root": _HEX32_SCHEMA,
                    "proposer": _HEX32_SCHEMA,
                    "view": _UINT,
                    "timestamp_ms": _UINT,
                },
            },
            "txs": {"type": "array", "items": _ref("BlockTx")},
            "certificate": _ref("Certificate"),
        },
    },
    "Validator": {
        "type": "object",
        "required": ["index", "name", "public_key"],
        "properties": {"index": _UINT, "name": {"type": "string"}, "public_key": _HEX32_SCHEMA},
    },
    "Network": {
        "type": "object",
        "required": ["chain_name", "self_index", "validators"],
        "properties": {
            "chain_name": {"type": "string"},
            "self_index": {"type": ["integer", "null"], "minimum": 0},
            "validators": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "name", "public_key", "api_url"],
                    "properties": {
                        "index": _UINT,
                        "name": {"type": "string"},
                        "public_key": _HEX32_SCHEMA,
                        "api_url": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
    "Validators": {
        "type": "object",
        "required": ["validators"],
        "properties": {"validators": {"type": "array", "items": _ref("Validator")}},
    },
    "Chain": {
        "type": "object",
        "required": [
            "chain_id",
            "chain_name",
            "genesis_hash",
            "genesis_time_ms",
            "height",
            "auditor_memo_public_key",
            "assets",
            "validators",
            "params",
        ],
        "properties": {
            "chain_id": _HEX32_SCHEMA,
            "chain_name": {"type": "string"},
            "genesis_hash": _HEX32_SCHEMA,
            "genesis_time_ms": _UINT,
            "height": _UINT,
            "auditor_memo_public_key": _HEX32_SCHEMA,
            "assets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "symbol", "issuer", "issued_total"],
                    "properties": {
                        "id": _HEX32_SCHEMA,
                        "symbol": {"type": "string"},
                        "issuer": _HEX32_SCHEMA,
                        "issued_total": _UINT,
                    },
                },
            },
            "validators": {"type": "array", "items": _ref("Validator")},
            "params": {
                "type": "object",
                "required": ["max_tx_bytes", "max_block_txs"],
                "properties": {"max_tx_bytes": _UINT, "max_block_txs": _UINT},
            },
        },
    },
    "Output": {
        "type": "object",
        "required": [
            "id",
            "tx_id",
            "height",
            "owner",
            "asset",
            "commitment",
            "spent",
            "spent_by",
        ],
        "properties": {
            "id": {"type": "string", "pattern": _HEX33},
            "tx_id": _HEX32_SCHEMA,
            "height": _UINT,
            "owner": _HEX32_SCHEMA,
            "asset": _HEX32_SCHEMA,
            "commitment": _HEX32_SCHEMA,
            "spent": {"type": "boolean"},
            "spent_by": _NULLABLE_HEX32,
            "owner_memo": {"type": "string", "contentEncoding": "base64"},
            "audit_memo": {"type": "string", "contentEncoding": "base64"},
        },
    },
    "OutputPage": {
        "type": "object",
        "required": ["outputs", "next_after"],
        "properties": {
            "outputs": {"type": "array", "items": _ref("Output")},
            "next_after": {"type": ["string", "null"], "pattern": _HEX33},
        },
    },
    "Account": {
        "type": "object",
        "required": [
            "public_key",
            "memo_public_key",
            "registered_by",
            "member",
            "member_name",
            "last_nonce",
        ],
        "properties": {
            "public_key": _HEX32_SCHEMA,
            "memo_public_key": _HEX32_SCHEMA,
            "registered_by": _NULLABLE_HEX32,
            "member": {"type": "boolean"},
            "member_name": {"type": ["string", "null"]},
            "last_nonce": _UINT,
        },
    },
    "Loan": {
        "type": "object",
        "description": "A loan at a height: public terms, status and commitments, never an amount",
        "required": [
            "id",
            "lender",
            "borrower",
            "asset",
            "rate_bps",
            "period_blocks",
            "maturity_height",
            "purpose",
            "principal_commitment",
            "outstanding_commitment",
            "status",
            "overdue",
            "originated_height",
            "accrued_periods",
            "closed_height",
        ],
        "properties": {
            "id": _HEX32_SCHEMA,
            "lender": _HEX32_SCHEMA,
            "borrower": _HEX32_SCHEMA,
            "asset": _HEX32_SCHEMA,
            "rate_bps": {"type": "integer", "minimum": 0, "maximum": 10000},
            "period_blocks": {"type": "integer", "minimum": 1},
            "maturity_height": _UINT,
            "purpose": {"type": "string"},
            "principal_commitment": _HEX32_SCHEMA,
            "outstanding_commitment": _HEX32_SCHEMA,
            "status": {"enum": ["active", "closed"]},
            "overdue": {"type": "boolean"},
            "originated_height": _UINT,
            "accrued_periods": _UINT,
            "closed_height": {"type": ["integer", "null"], "minimum": 0},
            "height": _UINT,
        },
    },
    "BorrowerLoans": {
        "type": "object",
        "required": ["borrower", "height", "block_hash", "certificate", "loans"],
        "properties": {
            "borrower": _HEX32_SCHEMA,
            "height": _UINT,
            "block_hash": _HEX32_SCHEMA,
            "certificate": _ref("Certificate"),
            "loans": {"type": "array", "items": _ref("Loan")},
        },
    },
    "Status": {
        "type": "object",
        "required": [
            "height",
            "view",
            "primary",
            "state_root",
            "last_commit_ms",
            "peers",
            "mempool_txs",
            "mempool_bytes",
            "catching_up",
            "stopped",
            "stop_reason",
            "wal_latched",
            "msm_backend",
        ],
        "properties": {
            "height": {"type": "integer"},
            "view": _UINT,
            "primary": _UINT,
            "state_root": _HEX32_SCHEMA,
            "last_commit_ms": {"type": ["integer", "null"]},
            "peers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "public_key", "connected"],
                    "properties": {
                        "index": _UINT,
                        "public_key": _HEX32_SCHEMA,
                        "connected": {"type": "boolean"},
                    },
                },
            },
            "mempool_txs": _UINT,
            "mempool_bytes": _UINT,
            "catching_up": {
                "type": ["object", "null"],
                "required": ["target_height", "done_height"],
                "properties": {"target_height": _UINT, "done_height": _UINT},
            },
            "stopped": {"type": "boolean"},
            "stop_reason": {"type": ["string", "null"]},
            "wal_latched": {"type": "boolean"},
            "msm_backend": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "failed"],
        "properties": {
            "status": {"enum": ["ok", "unhealthy"]},
            "failed": {
                "type": "array",
                "items": {"enum": ["stopped", "wal_latched", "no_quorum_of_peers", "catching_up"]},
            },
            "error": {"type": "object"},
        },
    },
}

_TX_SUBMIT_BODY: Final[Schema] = {
    "required": True,
    "content": {
        "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["tx"],
                "properties": {"tx": {"type": "string", "contentEncoding": "base64"}},
            }
        },
    },
}

_TX_BATCH_BODY: Final[Schema] = {
    "required": True,
    "content": {
        "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["txs"],
                "properties": {
                    "txs": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 256,
                        "items": {"type": "string", "contentEncoding": "base64"},
                    }
                },
            }
        },
    },
}


def _optional_query(name: str, schema: Schema, description: str | None = None) -> Schema:
    param: Schema = {"name": name, "in": "query", "required": False}
    if description is not None:
        param["description"] = description
    return param | {"schema": schema}


def _get(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    parameters: list[Schema] | None = None,
    description: str | None = None,
) -> dict[str, Schema]:
    """A path's ``get`` operation, its keys in the order the spec has always listed them."""
    operation: Schema = {"operationId": operation_id, "summary": summary}
    if description is not None:
        operation["description"] = description
    if parameters is not None:
        operation["parameters"] = parameters
    return {"get": operation | {"responses": responses}}


def _text(description: str, media_type: str, schema: Schema) -> dict[str, Schema]:
    return {"200": {"description": description, "content": {media_type: {"schema": schema}}}}


_BLOCK_FORMAT: Final = _optional_query(
    "format", {"enum": ["json", "raw"]}, "json (default) or raw: the stored block bytes"
)

_BLOCK_RESPONSES: Final[dict[str, Schema]] = {
    "200": {
        "description": "The block (JSON), or its raw bytes with format=raw",
        "content": {
            "application/json": {"schema": _ref("Block")},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **_errors(400, 404),
}

_TX_SUBMIT_ERRORS: Final = (400, 409, 413, 415, 422, 429, 503)

_LOAN_HEIGHT: Final = _optional_query(
    "height",
    {"type": "integer", "minimum": 0},
    "A retained height (the last 1024 by default); default: the tip",
)

_PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/v1/txs": {
        "post": {
            "operationId": "submitTx",
            "summary": "Submit one tx; idempotent",
            "requestBody": _TX_SUBMIT_BODY,
            "responses": {
                "202": _json(_ref("TxSubmitted"), "Admitted (or already known): pending"),
                **_errors(*_TX_SUBMIT_ERRORS),
            },
        }
    },
    "/v1/txs:batch": {
        "post": {
            "operationId": "submitTxBatch",
            "summary": "Submit up to 256 txs; one result each, in order",
            "requestBody": _TX_BATCH_BODY,
            "responses": {
                "200": _json(_ref("TxBatchResult"), "One result per tx"),
                **_errors(400, 413, 415),
            },
        }
    },
    "/v1/txs/{tx_id}": _get(
        "getTx",
        "A tx's status; wait=commit waits up to timeout_ms",
        {"200": _json(_ref("TxStatus"), "The tx's status"), **_errors(400, 404)},
        [
            _hex_param("tx_id", "path", _HEX32, "tx id, 64 lowercase hex"),
            _optional_query("wait", {"enum": ["commit"]}),
            _optional_query(
                "timeout_ms",
                {"type": "integer", "minimum": 0, "maximum": 30000},
                "With wait=commit; at most the node's cap (30000 by default)",
            ),
        ],
    ),
    "/v1/blocks/latest": _get(
        "getLatestBlock", "The last committed block", _BLOCK_RESPONSES, [_BLOCK_FORMAT]
    ),
    "/v1/blocks/{height}": _get(
        "getBlock",
        "The block at a height (0 is the genesis)",
        _BLOCK_RESPONSES,
        [
            {
                "name": "height",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            },
            _BLOCK_FORMAT,
        ],
    ),
    "/v1/chain": {
        "get": {
            "operationId": "getChain",
            "summary": "Chain id, auditor memo key, assets with issued totals, validators",
            "responses": {"200": _json(_ref("Chain"), "The chain"), **_errors(400)},
        }
    },
    "/v1/validators": {
        "get": {
            "operationId": "getValidators",
            "summary": "The genesis validator set, in index order",
            "responses": {"200": _json(_ref("Validators"), "The validators"), **_errors(400)},
        }
    },
    "/v1/outputs": _get(
        "listOutputs",
        "An owner's outputs, in id order, paginated by `after`",
        {"200": _json(_ref("OutputPage"), "One page"), **_errors(400)},
        [
            _hex_param("owner", "query", _HEX32, "owner public key"),
            _optional_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
            _optional_query(
                "after",
                {"type": "string", "pattern": _HEX33},
                "the next_after of the previous page",
            ),
        ],
    ),
    "/v1/outputs/{output_id}": _get(
        "getOutput",
        "One output with its sealed memos",
        {"200": _json(_ref("Output"), "The output"), **_errors(400, 404)},
        [_hex_param("output_id", "path", _HEX33, "output id, 66 hex")],
    ),
    "/v1/accounts/{public_key}": _get(
        "getAccount",
        "A registered account or member bank, with its last nonce",
        {"200": _json(_ref("Account"), "The account"), **_errors(400, 404)},
        [_hex_param("public_key", "path", _HEX32, "public key, 64 hex")],
    ),
    "/v1/borrowers/{public_key}/loans": _get(
        "listBorrowerLoans",
        "Every loan of a borrower at a height, with that block's certificate",
        {"200": _json(_ref("BorrowerLoans"), "The loans at that height"), **_errors(400, 410)},
        [_hex_param("public_key", "path", _HEX32, "borrower public key, 64 hex"), _LOAN_HEIGHT],
    ),
    "/v1/loans/{loan_id}": _get(
        "getLoan",
        "One loan at a height: terms, status, overdue, commitments",
        {"200": _json(_ref("Loan"), "The loan"), **_errors(400, 404, 410)},
        [
            _hex_param("loan_id", "path", _HEX32, "loan id (its originating tx id), 64 hex"),
            _LOAN_HEIGHT,
        ],
    ),
    "/v1/network": {
        "get": {
            "operationId": "getNetwork",
            "summary": "The validators with their API URLs (from genesis), and this node's index",
            "responses": {"200": _json(_ref("Network"), "The network"), **_errors(400)},
        }
    },
    "/v1/status": {
        "get": {
            "operationId": "getStatus",
            "summary": "Height, view, primary, peers, mempool, catch-up",
            "responses": {"200": _json(_ref("Status"), "The node's status"), **_errors(400)},
        }
    },
    "/v1/events": _get(
        "events",
        "WebSocket of committed blocks and tx status changes",
        {"101": {"description": "Switching to the WebSocket protocol"}, **_errors(400, 503)},
        description="Upgrade to a WebSocket; a subscriber that falls behind is "
        "closed with code 4008. At the node's subscriber limit the upgrade is refused: "
        "503 TOO_MANY_SUBSCRIBERS with Retry-After.",
    ),
    "/healthz": _get(
        "health",
        "200 when healthy, else 503 with the failed checks",
        {
            "200": _json(_ref("Health"), "Healthy"),
            "503": _json(_ref("Health"), "Unhealthy: the failed checks"),
            **_errors(400),
        },
    ),
    "/metrics": _get(
        "metrics",
        "Prometheus text exposition",
        _text("The node's metrics", "text/plain", {"type": "string"}) | _errors(400),
    ),
    "/openapi.json": _get(
        "openapi",
        "This document",
        _text("OpenAPI 3.1", "application/json", {"type": "object"}) | _errors(400),
    ),
}


OPENAPI: Final[Schema] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Veil node API",
        "version": "1",
        "description": "JSON under /v1. Every error is "
        '{"error": {"code": "<STABLE_CODE>", "message": "..."}}; see docs/api.md.',
    },
    "paths": _PATHS,
    "components": {"schemas": _SCHEMAS},
}


async def get_openapi(request: web.Request) -> web.Response:
    check_known_params(request.query, frozenset())
    return web.json_response(OPENAPI)
