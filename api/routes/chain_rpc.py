"""`POST /rpc`: the embedded chain as JSON-RPC, so that other local commands share the running server's chain.

Only when the server runs the in-process chain, and only for clients on this machine: the embedded chain is a
development chain whose pre-funded accounts are public knowledge. With a real node configured it answers 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from ledger.chain import revert_data

from ..deps import StateDep

router = APIRouter(include_in_schema=False)
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


@router.post("/rpc")
async def chain_rpc(request: Request, state: StateDep) -> JSONResponse:
    backend = state.service.backend
    provider = getattr(backend, "provider", None)
    if provider is None:
        raise HTTPException(404, "no embedded chain: this server uses a JSON-RPC node")
    if request.client is None or request.client.host not in LOOPBACK:
        raise HTTPException(403, "the embedded chain answers local clients only")
    try:
        payload = await request.json()
    except ValueError:
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})

    # Through web3's request pipeline: its tester middleware turns eth-tester's own format into JSON-RPC's.
    request_func = provider.request_func(backend.web3, backend.web3.middleware_onion)

    def answer(call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or "method" not in call:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        try:
            response = dict(request_func(call["method"], call.get("params", [])))
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
