#!/usr/bin/env python3
"""fake_e2b.py — a stateful stand-in for the E2B control plane and its sandbox proxy, written to
shared/reference/e2b-daytona.md §1 and checked against shared/specs/e2b-openapi.yml.

Flow: e2b backend → POST/GET/DELETE /sandboxes… here (X-API-Key); client → Host
"{port}-{sandboxID}.{domain}" here → the sandbox's own agentix-server (a real one per sandbox,
started as the template's start command would have left it running: before the 201).

Usage: fake_e2b.py --server BIN --module-path DIR --spec e2b-openapi.yml --api-key KEY
                   [--domain D] [--template T] [--cap N]
Prints "PORT <n>"; stops on SIGTERM or when stdin closes. Faults (POST /_fake/faults, counters):
  create_429        route limiter 429 with Retry-After (fault "retry_after", default 1)
  create_500        500 "Failed to place sandbox"
  create_503        503 capacity exhausted (error_code sandbox_capacity_unavailable)
  create_hang       the create hangs "hang_ms" (default 30000) then answers 504, creating nothing
  delete_500        500 on DELETE (the backend retries idempotent calls)
  port_closed       each new sandbox answers 502 "port is not open" to its first N proxied requests
--rate-limit N answers creates beyond N in any second with 429 and Retry-After: 1, as E2B's route
limiter does; /_fake/stats then also reports create_requests, creates (accepted), rate_limited,
peak_live (sandboxes alive at once, placing ones included) and max_creates_1s (accepted creates in
the busiest second).
"""
import os
import random
import string
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import fakebase  # noqa: E402
import spec as specmod  # noqa: E402

CLIENT_ID = "6532622b"
ENVD_VERSION = "0.4.3"
MAX_TIMEOUT = 3600  # Hobby/Base plan
INVALID_KEY = ("Invalid API key, please visit https://e2b.dev/docs/api-key for more information.\n"
               "Invalid API key format")


def new_id():
    return "i" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(20))


class E2B(fakebase.FakeService):
    name = "e2b"

    def __init__(self, args):
        super().__init__(args, specmod.Spec(args.spec))
        self.sandboxes = {}  # id → dict; "runtime" None while starting
        self.reserved = 0    # creates in flight, counted against the cap
        self.accepted = []   # monotonic times of accepted creates (the limiter's window)
        self.create_requests = self.rate_limited = self.peak_live = self.max_1s = 0
        threading.Thread(target=self.reaper, daemon=True).start()

    # ---- helpers ----

    def error(self, h, status, message, headers=None, error_code=None):
        body = {"code": status, "message": message}
        if error_code:
            body["error_code"] = error_code
        h.reply(status, body, headers)

    def live_count(self):
        with self.lock:
            return len(self.sandboxes) + self.reserved

    def stats(self):
        s = super().stats()
        with self.lock:
            runs = {}
            for sb in self.sandboxes.values():
                r = sb["metadata"].get("agentix.run")
                runs[r] = runs.get(r, 0) + 1
            s.update({"by_run": runs, "create_requests": self.create_requests,
                      "creates": len(self.accepted),
                      "rate_limited": self.rate_limited, "peak_live": self.peak_live,
                      "max_creates_1s": self.max_1s})
        return s

    def limited(self):
        """The route limiter (lock held): True when this create is one too many this second."""
        now = time.monotonic()
        recent = [t for t in self.accepted[-4 * max(self.args.rate_limit, 1):] if now - t < 1.0]
        if self.args.rate_limit and len(recent) >= self.args.rate_limit:
            return True
        self.accepted.append(now)
        self.max_1s = max(self.max_1s, len(recent) + 1)
        return False

    def detail(self, sb, listed=False):
        d = {"templateID": sb["template"], "sandboxID": sb["id"], "clientID": CLIENT_ID,
             "startedAt": fakebase.iso(sb["started"]), "endAt": fakebase.iso(sb["end"]),
             "cpuCount": 2, "memoryMB": 512, "diskSizeMB": 1024, "state": "running",
             "envdVersion": ENVD_VERSION, "metadata": sb["metadata"]}
        if not listed:
            d["domain"] = self.args.domain
        return d

    def kill(self, sid):
        with self.lock:
            sb = self.sandboxes.pop(sid, None)
        if sb and sb["runtime"]:
            sb["runtime"].stop()
        return sb is not None

    def reaper(self):
        while True:
            time.sleep(0.2)
            now = time.time()
            with self.lock:
                expired = [s["id"] for s in self.sandboxes.values() if s["end"] <= now]
            for sid in expired:
                self.note("expired")
                self.kill(sid)

    def shutdown_all(self):
        with self.lock:
            ids = list(self.sandboxes)
        for sid in ids:
            self.kill(sid)

    def sandbox_id(self, h, raw):
        """The id from a path segment (legacy '<id>-<clientID>' accepted); None after a 400."""
        if raw.count("-") > 1:
            self.error(h, 400, "Invalid sandbox ID")
            return None
        return raw.split("-", 1)[0]

    def not_found(self, h, sid):
        self.error(h, 404, "Sandbox \"%s\" doesn't exist or you don't have access to it" % sid)

    # ---- API ----

    def api(self, h, method, path, query, body):
        if h.headers.get("X-API-Key") != self.args.api_key:
            return self.error(h, 401, INVALID_KEY)
        problems = self.spec.check_request(method, path, query, body)
        if problems:
            return self.error(h, 400, "validation error: error in openapi3filter.RequestError: " +
                              "; ".join(problems))
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["sandboxes"]:
            return self.create(h, body)
        if method == "GET" and parts == ["v2", "sandboxes"]:
            return self.list(h, query)
        if len(parts) >= 2 and parts[0] == "sandboxes":
            sid = self.sandbox_id(h, parts[1])
            if sid is None:
                return None
            with self.lock:
                sb = self.sandboxes.get(sid)
                if sb is not None and sb["runtime"] is None:
                    sb = None  # still being placed: not visible yet
            if sb is None:
                return self.not_found(h, sid)
            if method == "GET" and len(parts) == 2:
                return h.reply(200, self.detail(sb))
            if method == "DELETE" and len(parts) == 2:
                if self.take("delete_500"):
                    self.note("delete_500")
                    return self.error(h, 500, "Failed to kill sandbox: internal error")
                self.kill(sid)
                return h.reply(204)
            if method == "POST" and parts[2:] == ["timeout"]:
                with self.lock:
                    sb["end"] = time.time() + body["timeout"]
                self.note("timeout")
                return h.reply(204)
        return self.error(h, 404, "not found")

    def create(self, h, body):
        self.note("create")
        with self.lock:
            self.create_requests += 1
            over = self.limited()
            if over:
                self.rate_limited += 1
        if over:
            self.note("429")
            return self.error(h, 429, "Rate limit exceeded", {"Retry-After": 1})
        if self.take("create_hang"):
            time.sleep(self.faults.get("hang_ms", 30000) / 1000.0)
            return self.error(h, 504, "Timed out placing the sandbox",
                              error_code="sandbox_placement_timeout")
        if self.take("create_429"):
            ra = self.faults.get("retry_after", 1)
            self.note("429")
            return self.error(h, 429, "Rate limit exceeded",
                              {"Retry-After": ra, "RateLimit-Limit": 1800,
                               "RateLimit-Remaining": 0, "RateLimit-Reset": ra})
        if self.take("create_500"):
            return self.error(h, 500, "Failed to place sandbox")
        if self.take("create_503"):
            return self.error(h, 503, "No capacity to place the sandbox",
                              error_code="sandbox_capacity_unavailable")
        timeout = body.get("timeout", 15)
        if timeout <= 0:
            return self.error(h, 400, "Timeout must be greater than 0")
        if timeout > MAX_TIMEOUT:
            return self.error(h, 400, "Timeout cannot be greater than 1 hours")
        template = body["templateID"]
        if template not in self.args.template:
            return self.error(h, 404, "template '%s' not found" % template)
        public = body.get("network", {}).get("allowPublicTraffic", True)
        if not public and not body.get("secure"):
            return self.error(h, 400, "You cannot create a sandbox without public access unless "
                              "you enable secure envd access via 'secure' flag.")
        with self.lock:
            if len(self.sandboxes) + self.reserved >= self.args.cap:
                self.note("cap")
                return self.error(h, 429, "you have reached the maximum number of concurrent E2B "
                                  "sandboxes (%d). If you need more, please visit "
                                  "'https://e2b.dev/docs/billing'" % self.args.cap)
            self.reserved += 1
            self.peak_live = max(self.peak_live, len(self.sandboxes) + self.reserved)
        slot = {"reserved": True}
        try:
            return self.place(h, body, template, timeout, public, slot)
        finally:
            with self.lock:
                if slot["reserved"]:
                    self.reserved -= 1

    def place(self, h, body, template, timeout, public, slot):
        # The template's start command ran at build time and never sees envVars: no token, so it
        # says AGENTIX_AUTH=claim (backends/e2b/README.md), as a real template's must; the backend
        # claims it with the sandbox's own token once it answers.
        rt = self.start_runtime({"AGENTIX_AUTH": "claim"})
        if rt.wait_port(20) is None:
            rt.stop()
            return self.error(h, 500, "error when creating instance: failed to init new envd",
                              error_code="sandbox_create_failed")
        now = time.time()
        sb = {"id": new_id(), "template": template, "metadata": body.get("metadata", {}),
              "started": now, "end": now + timeout, "runtime": rt, "public": public,
              "traffic": None if public else "".join(random.choice(string.hexdigits.lower())
                                                     for _ in range(32)),
              "closed_left": self.faults.get("port_closed", 0)}
        with self.lock:
            # The reservation becomes the live sandbox in one step: released only after the 201
            # went out, it counted this sandbox twice meanwhile, and a create admitted by a delete
            # in that window raised peak_live above the cap the host kept.
            self.sandboxes[sb["id"]] = sb
            self.reserved -= 1
            slot["reserved"] = False
        resp = {"templateID": template, "sandboxID": sb["id"], "clientID": CLIENT_ID,
                "envdVersion": ENVD_VERSION, "envdAccessToken": "ea_" + sb["id"],
                "trafficAccessToken": sb["traffic"], "domain": self.args.domain}
        return h.reply(201, resp)

    def list(self, h, query):
        want = dict(urllib.parse.parse_qsl(query.get("metadata", ""), keep_blank_values=True))
        limit = int(query.get("limit", "100"))
        start = int(query.get("nextToken", "0") or "0")
        with self.lock:
            rows = [self.detail(s, listed=True) for s in self.sandboxes.values()
                    if s["runtime"] is not None and
                    all(s["metadata"].get(k) == v for k, v in want.items())]
            total = len(self.sandboxes)
        rows.sort(key=lambda r: r["sandboxID"])
        page = rows[start:start + limit]
        headers = {"X-Total-Running": total}
        if start + limit < len(rows):
            headers["X-Next-Token"] = str(start + limit)
        return h.reply(200, page, headers)

    # ---- proxy ----

    def proxy_target(self, h):
        host = h.headers.get("Host", "").split(":")[0].lower()
        suffix = "." + self.args.domain
        if not host.endswith(suffix):
            return None
        label = host[:-len(suffix)]
        port, _, sid = label.partition("-")
        with self.lock:
            sb = self.sandboxes.get(sid)
            if sb is None or sb["runtime"] is None:
                return (502, {"sandboxId": sid, "message": "The sandbox was not found",
                              "code": 502}, {})
            closed = port != "8000" or sb["closed_left"] > 0
            if sb["closed_left"] > 0:
                sb["closed_left"] -= 1
            if closed:
                return (502, {"sandboxId": sid, "message": "The sandbox is running but port is "
                              "not open", "port": int(port) if port.isdigit() else 0,
                              "code": 502}, {})
            if sb["traffic"] and h.headers.get("e2b-traffic-access-token") != sb["traffic"]:
                return (403, {"sandboxId": sid, "message": "missing or invalid traffic access "
                              "token (header e2b-traffic-access-token)", "code": 403}, {})
            return sb["runtime"].port


def main():
    def extra(p):
        p.add_argument("--domain", default="e2b.app")
        p.add_argument("--template", action="append", default=None,
                       help="templates that exist (default: agentix)")
        p.add_argument("--rate-limit", type=int, default=0,
                       help="creates per second beyond which the API answers 429 (0 = none)")

    args = fakebase.parse_args(sys.argv[1:], extra)
    if not args.template:
        args.template = ["agentix"]
    fakebase.serve(E2B(args))


if __name__ == "__main__":
    main()
