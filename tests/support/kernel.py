"""Run code in a kernel of a user's notebook server, through the hub, as a notebook does:
the server's REST API starts a kernel, its channels websocket carries an
`execute_request` (Jupyter messaging protocol 5.3), and the kernel's stdout comes back.

    out = run_in_kernel(f"{hub_url}/user/alice", token, "print(1 + 1)")   # "2\\n"
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp


class KernelError(AssertionError):
    """The code raised in the kernel (its traceback is the message)."""


def run_in_kernel(server_url: str, token: str, code: str, timeout: float = 600, kernel_name: str = "") -> str:
    """stdout of `code` run in a new kernel (of spec `kernel_name`, else the server's default)
    of the server at `server_url` (deleted after)."""
    return asyncio.run(asyncio.wait_for(_run(server_url.rstrip("/"), token, code, kernel_name), timeout))


def run_in_running_kernel(server_url: str, token: str, kernel: str, code: str, timeout: float = 600) -> str:
    """stdout of `code` run in the server's already started kernel `kernel` (left running)."""
    return asyncio.run(asyncio.wait_for(_run_in(server_url.rstrip("/"), token, kernel, code), timeout))


async def _run_in(server_url: str, token: str, kernel: str, code: str) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as session:
        channels = "ws" + server_url[len("http"):] + f"/api/kernels/{kernel}/channels"
        async with session.ws_connect(channels, max_msg_size=0) as socket:
            return await _execute(socket, code)


async def _run(server_url: str, token: str, code: str, kernel_name: str = "") -> str:
    headers = {"Authorization": f"token {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        spec = {"name": kernel_name} if kernel_name else {}
        async with session.post(f"{server_url}/api/kernels", json=spec) as answer:
            assert answer.status == 201, f"kernel not started: HTTP {answer.status} {await answer.text()}"
            kernel = (await answer.json())["id"]
        try:
            channels = "ws" + server_url[len("http"):] + f"/api/kernels/{kernel}/channels"
            async with session.ws_connect(channels, max_msg_size=0) as socket:
                return await _execute(socket, code)
        finally:
            async with session.delete(f"{server_url}/api/kernels/{kernel}"):
                pass


async def _execute(socket, code: str) -> str:
    msg_id = uuid.uuid4().hex
    await socket.send_json({
        "header": {
            "msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
            "username": "test", "version": "5.3", "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code, "silent": False, "store_history": False,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    })
    out: list[str] = []
    async for message in socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"kernel channel closed: {message}")
        reply = message.json()
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream" and content.get("name") == "stdout":
            out.append(content["text"])
        elif kind == "error":
            raise KernelError("\n".join(content.get("traceback", [])) or content.get("evalue", ""))
        elif kind == "status" and content.get("execution_state") == "idle":
            return "".join(out)
    raise AssertionError("kernel channel ended before the code finished")
