#!/usr/bin/env python3
"""stand_in.py: a tiny MCP channel server (Python 3 stdlib only) for mock-claude's tests of
client behaviours the zoo does not cover: the probe memory, the tool-call idle cut and modern-era
results without resultType.

  --discover error|silent|result   how server/discover is answered (default error: -32601)
  --result-type                    put resultType "complete" in tools/list and tools/call results
  --tool answer|hang|progress      reply: answer at once; never answer; or send --progress-count
                                   notifications/progress every --progress-ms, then answer
  --progress-count N  --progress-ms MS
  --log PATH                       append the method of every message received, one per line

Logs go to stderr; stdout carries frames only.
"""
import argparse
import json
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--discover", choices=["error", "silent", "result"], default="error")
ap.add_argument("--result-type", action="store_true")
ap.add_argument("--tool", choices=["answer", "hang", "progress"], default="answer")
ap.add_argument("--progress-count", type=int, default=5)
ap.add_argument("--progress-ms", type=int, default=200)
ap.add_argument("--log")
args = ap.parse_args()

lock = threading.Lock()
CAPS = {"experimental": {"claude/channel": {}}, "tools": {}}
REPLY = {"name": "reply", "description": "Send a reply.",
         "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                         "required": ["text"]}}


def send(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def result(mid, res):
    if args.result_type:
        res = dict(res, resultType="complete")
    send({"jsonrpc": "2.0", "id": mid, "result": res})


def progress_then_answer(mid, token):
    for i in range(args.progress_count):
        time.sleep(args.progress_ms / 1000)
        send({"jsonrpc": "2.0", "method": "notifications/progress",
              "params": {"progressToken": token, "progress": i + 1}})
    result(mid, {"content": [{"type": "text", "text": "sent after progress"}]})


for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, mid = msg.get("method"), msg.get("id")
    if args.log and method:
        with open(args.log, "a") as f:
            f.write(method + "\n")
    params = msg.get("params") or {}
    if method == "server/discover":
        if args.discover == "error":
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
        elif args.discover == "result":
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": "2026-07-28", "capabilities": CAPS,
                "serverInfo": {"name": "stand-in", "version": "0"}}})
    elif method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"), "capabilities": CAPS,
            "serverInfo": {"name": "stand-in", "version": "0"}}})
    elif method == "tools/list":
        result(mid, {"tools": [REPLY]})
    elif method == "tools/call":
        if args.tool == "answer":
            result(mid, {"content": [{"type": "text", "text": "sent"}]})
        elif args.tool == "progress":
            token = (params.get("_meta") or {}).get("progressToken")
            threading.Thread(target=progress_then_answer, args=(mid, token), daemon=True).start()
        else:
            sys.stderr.write(f"stand-in: not answering tools/call {mid}\n")
    elif method is not None and mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
