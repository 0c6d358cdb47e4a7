"""ServedApp serves with httptools on uvloop (dependencies of syncer), and answers the same."""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from syncer.sandbox import serve
from syncer.sandbox.faults import FaultPlan
from syncer.sandbox.nrs360 import Nrs360Simulator
from syncer.sandbox.serve import ServedApp


async def loop_name(scope: Scope, receive: Receive, send: Send) -> None:
    body = type(asyncio.get_running_loop()).__module__.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_the_c_parser_and_event_loop_serve() -> None:
    assert serve.HTTP_IMPL == "httptools"
    if sys.platform != "win32":
        assert serve.LOOP_IMPL == "uvloop"
    with ServedApp(loop_name) as served:
        answer = httpx.get(served.url + "/")
        protocol = served._server.config.http_protocol_class
    assert answer.status_code == 200
    assert protocol.__name__ == "HttpToolsProtocol"
    if sys.platform != "win32":
        assert answer.text.startswith("uvloop")


def test_a_lost_response_is_still_cut_mid_body() -> None:
    sim = Nrs360Simulator(FaultPlan(lost_response_rate=1.0))
    with ServedApp(sim.asgi()) as served, httpx.Client(base_url=served.url) as http:
        auth = httpx.BasicAuth("sandbox-user", "sandbox-api-password")
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/api/rest/groups", json={"name": "G"}, auth=auth)
        # applied all the same
        assert [g.name for g in sim.store.groups.values()] == ["G"]
