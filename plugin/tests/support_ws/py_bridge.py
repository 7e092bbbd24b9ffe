#!/usr/bin/env python3
"""A WebSocket bridge written with Python's `websockets` package (a peer no one
on this team wrote), driven line by line from a Rust test.

stdout (one JSON object per line):
  {"listening": PORT}
  {"connected": {"authorization": str|null, "path": str}}
  {"recv": TEXT}            a text frame from the plugin
  {"recv_binary": LEN}
  {"disconnected": {"code": int|null, "reason": str}}
stdin (one JSON object per line):
  {"send": TEXT}            send a text frame to the current connection
  {"close": CODE}           close the current connection with CODE
EOF-less stdin ends the script.

Install the dependency with:  python3 -m pip install websockets
"""
import asyncio
import json
import sys

try:
    import websockets
    from websockets.asyncio.server import serve
except ImportError as err:  # the Rust test checks first; this is a backstop
    sys.stderr.write(f"py_bridge: {err}; install with: python3 -m pip install websockets\n")
    sys.exit(3)


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    current = {"ws": None}

    async def handler(ws):
        current["ws"] = ws
        out({"connected": {"authorization": ws.request.headers.get("Authorization"),
                           "path": ws.request.path}})
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    out({"recv_binary": len(message)})
                else:
                    out({"recv": message})
        except websockets.exceptions.ConnectionClosed:
            pass
        out({"disconnected": {"code": ws.close_code, "reason": ws.close_reason or ""}})

    # ping_interval=None: the plugin pings; websockets answers them itself.
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        out({"listening": port})
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            ws = current["ws"]
            if ws is None:
                sys.stderr.write(f"py_bridge: no connection for {cmd}\n")
                continue
            if "send" in cmd:
                await ws.send(cmd["send"])
            elif "close" in cmd:
                await ws.close(code=cmd["close"], reason="python bridge says bye")


asyncio.run(main())
