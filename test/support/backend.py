#!/usr/bin/env python3
"""A chat backend in Python 3 (standard library only) for Switchboard's proxy hooks and webhooks.

Run: python3 backend.py --port 0 --proxy-secret S --webhook-secret W
Prints "listening <port>" once it accepts requests. docs/backend.md describes the contract.

Proxy endpoints (POST, JSON, signed with X-Switchboard-Signature):
  /proxy/connect    cookie-session login: the "session" cookie names a session of SESSIONS
                    (with its server-side "channels", when it has some)
  /proxy/refresh    extends a session by TTL seconds, unless it was logged out
  /proxy/subscribe  allowlist: chat:* for everyone, staff:* for staff only
  /proxy/publish    stores the message with a database id and returns what to broadcast
                    (once per idempotencyKey: a client's retry gets the stored message again)
  /proxy/rpc        methods "sum" and "whoami"
Webhooks: /webhooks records every event of a correctly signed body; others get 401.
Test controls (unsigned, loopback only): /control (slowMs, failStatus), GET /state.
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSIONS = {
    "s-alice": {"user": "alice", "staff": True, "name": "Alice"},
    "s-bob": {"user": "bob", "staff": False, "name": "Bob"},
    # Subscribed server-side at connect; staff:ops is refused by the allowlist (carol is not staff).
    "s-carol": {"user": "carol", "staff": False, "name": "Carol", "channels": ["chat:lobby", "staff:ops", "chat:news"]},
}
TTL = 3600

lock = threading.Lock()
state = {
    "messages": [],       # the "database": stored chat messages
    "events": [],         # webhook events received (correctly signed)
    "rejected": 0,        # bodies refused by the signature check
    "proxyCalls": [],     # (kind, body) of each signed proxy call
}
stored_by_key = {}  # (channel, user, idempotencyKey) -> the message stored for it
controls = {"slowMs": 0, "failStatus": 0, "sessionTtl": TTL}


def signature_ok(secret, body, header):
    """True when header is sha256=<hex HMAC-SHA256 of the raw body under secret>."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def cookies(header):
    out = {}
    for part in (header or "").split(";"):
        if "=" in part:
            k, v = part.strip().split("=", 1)
            out[k] = v
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/state":
            with lock:
                self.reply(200, state)
        else:
            self.reply(404, {})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/control":
            controls.update(json.loads(raw or b"{}"))
            return self.reply(200, controls)
        if controls["slowMs"]:
            time.sleep(controls["slowMs"] / 1000)
        if controls["failStatus"]:
            return self.reply(controls["failStatus"], {"oops": True})
        sig = self.headers.get("X-Switchboard-Signature")
        if self.path == "/webhooks":
            if not signature_ok(ARGS.webhook_secret, raw, sig):
                with lock:
                    state["rejected"] += 1
                return self.reply(401, {"error": "bad signature"})
            batch = json.loads(raw)
            with lock:
                state["events"].extend(batch["events"])
            return self.reply(200, {})
        if not self.path.startswith("/proxy/"):
            return self.reply(404, {})
        if not signature_ok(ARGS.proxy_secret, raw, sig):
            with lock:
                state["rejected"] += 1
            return self.reply(401, {"error": "bad signature"})
        req = json.loads(raw)
        kind = self.path[len("/proxy/"):]
        with lock:
            state["proxyCalls"].append({"kind": kind, "body": req})
        handler = getattr(self, "proxy_" + kind, None)
        if handler is None:
            return self.reply(404, {})
        self.reply(200, handler(req))

    def proxy_connect(self, req):
        sid = cookies(req["headers"].get("cookie")).get("session")
        session = SESSIONS.get(sid)
        if session is None:
            return {"error": {"code": 1401, "message": "not logged in"}}
        result = {"user": session["user"], "expiresAt": int(time.time()) + controls["sessionTtl"], "info": {"name": session["name"]}}
        if "channels" in session:
            result["channels"] = session["channels"]
        return {"result": result}

    def proxy_refresh(self, req):
        sid = cookies(req["headers"].get("cookie")).get("session")
        if sid in controls.get("loggedOut", []) or sid not in SESSIONS:
            return {"result": {"expired": True}}
        return {"result": {"expiresAt": int(time.time()) + TTL}}

    def proxy_subscribe(self, req):
        channel = req["channel"]
        session = next((s for s in SESSIONS.values() if s["user"] == req["user"]), None)
        if channel.startswith("chat:"):
            return {"result": {}}
        if channel.startswith("staff:") and session and session["staff"]:
            return {"result": {"info": {"role": "staff"}}}
        return {"error": {"code": 1403, "message": "not on the allowlist"}}

    def proxy_publish(self, req):
        data = req["data"]
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"].strip():
            return {"error": {"code": 1422, "message": "a message needs text"}}
        # A client's retry carries the same idempotencyKey: store the message once, answer the same.
        key = (req["channel"], req["user"], req.get("idempotencyKey"))
        with lock:
            if key[2] is not None and key in stored_by_key:
                return {"result": {"data": stored_by_key[key]}}
            msg = {"id": len(state["messages"]) + 1, "channel": req["channel"], "user": req["user"], "text": data["text"].strip()}
            state["messages"].append(msg)
            if key[2] is not None:
                stored_by_key[key] = msg
        return {"result": {"data": msg}}

    def proxy_rpc(self, req):
        if req["method"] == "sum":
            nums = req["data"] if isinstance(req["data"], list) else []
            return {"result": {"data": {"sum": sum(nums)}}}
        if req["method"] == "whoami":
            return {"result": {"data": {"user": req["user"], "transport": req["transport"]}}}
        return {"error": {"code": 1404, "message": "no such method: " + str(req["method"])}}


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--proxy-secret", required=True)
parser.add_argument("--webhook-secret", required=True)
ARGS = parser.parse_args()
server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
server.daemon_threads = True
print("listening", server.server_address[1], flush=True)
sys.stdout.flush()
server.serve_forever()
