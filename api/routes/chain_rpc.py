"""`POST /rpc`: the embedded chain as JSON-RPC, so that other local commands share the running server's chain.

Only when `circular serve` runs the in-process chain and gave the app the secret it wrote to
``<data_dir>/server.json`` (mode 0600, see :func:`ledger.service.write_server_file`): a caller must be on this machine
and send ``Authorization: Bearer <secret>``, which only the server's own user can read. The loopback check alone
let any local user, an SSRF, or a client behind a pass-through relay (``ssh -L``, a TCP relay) in.

It forwards only what the other local commands need: reads, and ``eth_sendRawTransaction`` of a transaction signed
by the caller. Never ``eth_sendTransaction`` (the embedded chain's development accounts are unlocked, the admin among
them), nor ``evm_*``/``anvil_*``/``hardhat_*`` (snapshot and revert erase anchored history), ``debug_*`` or
``personal_*``: those answer JSON-RPC error -32601. Without a secret (any app but the server's), and with a real node
configured, ``/rpc`` is a 404.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from ledger.chain import revert_data

from ..deps import StateDep

log = logging.getLogger("circular.api.rpc")
router = APIRouter(include_in_schema=False)
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
# What `circular actors add`, `deploy`, `worker`, `export`, `verify`, `audit` and `rebuild` ask of a node while the
# server owns the chain: chain reads, and transactions they signed themselves.
FORWARDED_METHODS = frozenset(
    {
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "eth_sendRawTransaction",
        "eth_syncing",
        "net_version",
        "web3_clientVersion",
    }
)


def _authorised(request: Request, secret: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())


@router.post("/rpc")
async def chain_rpc(request: Request, state: StateDep) -> JSONResponse:
    backend = state.service.backend
    provider = getattr(backend, "provider", None)
    secret = state.rpc_secret
    if provider is None or not secret:
        raise HTTPException(404, "no embedded chain served here")
    if request.client is None or request.client.host not in LOOPBACK:
        raise HTTPException(403, "the embedded chain answers local clients only")
    if not _authorised(request, secret):
        raise HTTPException(
            401,
            "send the secret of <data-dir>/server.json as `Authorization: Bearer <secret>`",
            headers={"WWW-Authenticate": 'Bearer realm="circular-ledger rpc"'},
        )
    try:
        payload = await request.json()
    except ValueError:
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})

    # Through web3's request pipeline: its tester middleware turns eth-tester's own format into JSON-RPC's.
    request_func = provider.request_func(backend.web3, backend.web3.middleware_onion)

    def answer(call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        method = call["method"]
        if method not in FORWARDED_METHODS:
            log.warning("refused JSON-RPC method %.80r from a local client", method)
            refused = {"code": -32601, "message": f"method {method[:80]} is not available through this endpoint"}
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": refused}
        try:
            response = dict(request_func(method, call.get("params", [])))
            if "result" in response:
                response = {"result": response["result"]}
        except Exception as exc:  # a revert or a bad call: the JSON-RPC error a node would answer
            data = revert_data(exc)
            error: dict[str, Any] = {
                "code": 3 if data is not None else -32000,
                "message": "execution reverted" if data is not None else str(exc),
            }
            if data is not None:
                error["data"] = "0x" + data.hex()
            return {"jsonrpc": "2.0", "id": call.get("id"), "error": error}
        response.update(jsonrpc="2.0", id=call.get("id"))
        return response

    if isinstance(payload, list):
        return JSONResponse(jsonable([answer(call) for call in payload]))
    return JSONResponse(jsonable(answer(payload)))


def jsonable(value: Any) -> Any:
    """JSON-RPC's encoding of what web3 returns: bytes as 0x-hex, ints as quantities (0x-hex)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):  # web3's AttributeDict too
        return {k: (v if k in ("jsonrpc", "id", "error") else jsonable(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)
