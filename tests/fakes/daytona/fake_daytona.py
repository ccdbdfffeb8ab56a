#!/usr/bin/env python3
"""fake_daytona.py — a stateful stand-in for the Daytona API (under /api), its toolbox and its
preview proxy, written to shared/reference/e2b-daytona.md §2 and checked against
shared/specs/daytona-openapi.yaml (API and the /toolbox/{id}/toolbox/… operations).

Flow: daytona backend → POST /api/sandbox (200, state "creating") → GET polls until "started" →
preview-url (url + token) → client → Host "{port}-{id}.{proxy domain}" with
X-Daytona-Preview-Token → the sandbox's own agentix-server (a real one per sandbox). Snapshots
named by --snapshot start the server from their entrypoint, with the sandbox's env; snapshots
named by --bare-snapshot start nothing, so the server must be started through the toolbox
(session + exec runAsync of a command naming agentix-server).

Usage: fake_daytona.py --server BIN --module-path DIR --spec daytona-openapi.yaml --api-key KEY
                       [--proxy-domain D] [--snapshot S] [--bare-snapshot S] [--cap N]
                       [--minute-s S]

Auto-stop is enforced as Daytona does: a started sandbox with no activity (a proxied request, a
POST last-activity) for autoStopInterval minutes is stopped, and deleted at once when its
autoDeleteInterval is 0. --minute-s scales the minute for tests (default 60).
Prints "PORT <n>"; stops on SIGTERM or when stdin closes. Faults (POST /_fake/faults, counters):
  create_429     429 from the sandbox-create throttler: Retry-After-sandbox-create "retry_after"
                 (default 1); a plain Retry-After only when "plain_retry_after" is set
  create_500     500 "An unexpected error occurred."
  create_hang    the create hangs "hang_ms" (default 30000) then answers 500, creating nothing
  stuck_creating the next sandbox stays in "creating" (its runtime never starts)
  error_state    the next sandbox ends in "error" with an errorReason
  build_failed   the next sandbox ends in "build_failed"
  delete_500     500 on the next deletes
  delete_409     the next deletes answer 409 "Sandbox state change in progress"
  polls_to_start GET polls a sandbox answers "creating" before "started" (default 2)
  fail_in_create the next create leaves a sandbox in "error" and answers 400 "Sandbox failed to
                 start: …" (the controller's 30 s wait saw it fail), so the caller learns no id
  destroy_ms     how long "destroying" lasts before GET answers 404 (default 200)
"""
import os
import random
import json
import string
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import fakebase  # noqa: E402
import spec as specmod  # noqa: E402

ORG = "00000000-0000-4000-8000-00000000f00d"
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}


def nanoid():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(32))


class Daytona(fakebase.FakeService):
    name = "daytona"

    def __init__(self, args):
        super().__init__(args, specmod.Spec(args.spec, prefix="/api"))
        self.sandboxes = {}
        threading.Thread(target=self.autostopper, daemon=True).start()

    def autostopper(self):
        while True:
            time.sleep(0.2)
            now = time.time()
            with self.lock:
                # A sandbox its runner started counts from then, whether or not anyone polled it
                # into "started" (its creator may have died first).
                idle = [s for s in self.sandboxes.values()
                        if (s["state"] == "started" or
                            (s["state"] == "creating" and s["ready"] and not s["fail"] and
                             not s["stuck"])) and s["autostop"] > 0 and
                        s["desired"] != "destroyed" and
                        now - s["activity"] > s["autostop"] * self.args.minute_s]
                for sb in idle:
                    sb["state"] = "stopped"
            for sb in idle:
                self.note("autostop")
                self.stop_runtime(sb)
                if sb["autodelete"] == 0:
                    self.note("autodelete")
                    with self.lock:
                        self.sandboxes.pop(sb["id"], None)

    # ---- helpers ----

    def error(self, h, status, message, headers=None):
        body = {"path": h.path.split("?")[0], "timestamp": fakebase.iso(time.time()),
                "statusCode": status, "error": REASONS.get(status, "Error"), "message": message}
        h.reply(status, body, headers)

    def live_count(self):
        with self.lock:
            return len(self.sandboxes)

    def stats(self):
        s = super().stats()
        with self.lock:
            runs = {}
            for sb in self.sandboxes.values():
                r = sb["labels"].get("agentix.run")
                runs[r] = runs.get(r, 0) + 1
        s["by_run"] = runs
        return s

    def dto(self, sb):
        d = {"id": sb["id"], "organizationId": ORG, "name": sb["id"], "snapshot": sb["snapshot"],
             "user": "daytona", "env": sb["env"], "labels": sb["labels"], "public": sb["public"],
             "networkBlockAll": False, "target": sb["target"], "cpu": 1, "gpu": 0, "memory": 1,
             "disk": 3, "state": sb["state"], "desiredState": sb["desired"], "recoverable": False,
             "autoStopInterval": sb["autostop"], "autoArchiveInterval": 10080,
             "autoDeleteInterval": sb["autodelete"],
             "createdAt": fakebase.iso(sb["created"]), "updatedAt": fakebase.iso(time.time()),
             "toolboxProxyUrl": "http://127.0.0.1:%d/toolbox" % self.port}
        if sb["reason"]:
            d["errorReason"] = sb["reason"]
        return d

    def kill(self, sid):
        """A sandbox that dies under the user (runner lost): gone at once."""
        with self.lock:
            sb = self.sandboxes.pop(sid, None)
        if sb:
            self.stop_runtime(sb)
        return sb is not None

    def stop_runtime(self, sb):
        with self.lock:
            rt, sb["runtime"] = sb["runtime"], None
        if rt:
            rt.stop()

    def shutdown_all(self):
        with self.lock:
            ids = list(self.sandboxes)
        for sid in ids:
            self.kill(sid)

    def lookup(self, h, key):
        with self.lock:
            sb = self.sandboxes.get(key)
        if sb is None:
            self.error(h, 404, "Sandbox with ID or name %s not found" % key)
        return sb

    # ---- lifecycle (runner side) ----

    def boot(self, sb, with_server):
        """Runs in its own thread: the runner pulls and starts the sandbox; the API reports
        "started" once that is done and the sandbox was polled "polls_to_start" times."""
        if with_server and not self.launch(sb, sb["env"]):
            return
        with self.lock:
            sb["ready"] = True
        if sb["fail"]:
            self.stop_runtime(sb)

    def build_image(self, body):
        """The image of a declarative build ("FROM <image>"), None without buildInfo. Images
        named like an entrypoint snapshot start agentix-server; others start nothing."""
        info = body.get("buildInfo")
        if not isinstance(info, dict):
            return None
        first = info.get("dockerfileContent", "").strip().split("\n")[0].split()
        return first[1] if len(first) == 2 and first[0].upper() == "FROM" else ""

    def advance(self, sb):
        """A GET poll (lock held): pending_build → building_snapshot → creating → started (or
        error/build_failed) when due."""
        if sb["building"]:
            sb["state"] = "building_snapshot" if sb["building"] == 2 else "creating"
            sb["building"] -= 1
            return
        sb["polls"] += 1
        if (sb["state"] != "creating" or sb["stuck"] or not sb["ready"] or
                sb["polls"] < self.faults.get("polls_to_start", 2)):
            return
        if sb["fail"]:
            sb["state"], sb["reason"] = sb["fail"], "fake: scripted %s" % sb["fail"]
        else:
            sb["state"] = "started"

    def launch(self, sb, env):
        rt = self.start_runtime(env)
        ok = rt.wait_port(20) is not None
        with self.lock:
            alive = sb["id"] in self.sandboxes and sb["desired"] != "destroyed"
            if ok and alive and sb["runtime"] is None:
                sb["runtime"] = rt
                return True
            if not ok and alive:
                sb["state"], sb["reason"] = "error", "agentix-server did not start"
        rt.stop()
        return False

    def destroy(self, sb):
        self.stop_runtime(sb)
        time.sleep(self.faults.get("destroy_ms", 200) / 1000.0)
        with self.lock:
            self.sandboxes.pop(sb["id"], None)

    # ---- API ----

    def api(self, h, method, path, query, body):
        if path.startswith("/toolbox/"):
            return self.toolbox(h, method, path, body)
        if h.headers.get("Authorization") != "Bearer " + self.args.api_key:
            return self.error(h, 401, "Invalid credentials")
        problems = self.spec.check_request(method, path, query, body)
        if problems:
            return self.error(h, 400, ", ".join(problems))
        parts = path.strip("/").split("/")[1:]  # after "api"
        if parts == ["sandbox"] and method == "POST":
            return self.create(h, body or {})
        if parts == ["sandbox"] and method == "GET":
            return self.list(h, query)
        if len(parts) < 2 or parts[0] != "sandbox":
            return self.error(h, 404, "Cannot %s %s" % (method, path))
        sb = self.lookup(h, parts[1])
        if sb is None:
            return None
        if len(parts) == 2 and method == "GET":
            with self.lock:
                self.advance(sb)
                dto = self.dto(sb)
            return h.reply(200, dto)
        if len(parts) == 2 and method == "DELETE":
            return self.delete(h, sb)
        if parts[2:] == ["last-activity"] and method == "POST":
            with self.lock:
                sb["activity"] = time.time()
            self.note("last-activity")
            return h.reply(201)
        if parts[2:] == ["labels"] and method == "PUT":
            with self.lock:
                sb["labels"] = dict(body["labels"])
                labels = dict(sb["labels"])
            return h.reply(200, {"labels": labels})
        if len(parts) == 5 and parts[2] == "ports" and parts[4] == "preview-url":
            port = int(parts[3]) if parts[3].isdigit() else 0
            if not 1 <= port <= 65535:
                return self.error(h, 400, "Invalid port")
            url = "http://%d-%s.%s" % (port, sb["id"], self.args.proxy_domain)
            return h.reply(200, {"sandboxId": sb["id"], "url": url, "token": sb["token"]})
        return self.error(h, 404, "Cannot %s %s" % (method, path))

    def create(self, h, body):
        self.note("create")
        if self.take("create_hang"):  # then fails, creating nothing
            time.sleep(self.faults.get("hang_ms", 30000) / 1000.0)
            return self.error(h, 500, "An unexpected error occurred.")
        if self.take("create_429"):
            ra = self.faults.get("retry_after", 1)
            headers = {"X-RateLimit-Limit-sandbox-create": 300,
                       "X-RateLimit-Remaining-sandbox-create": 0,
                       "X-RateLimit-Reset-sandbox-create": ra, "Retry-After-sandbox-create": ra}
            if "plain_retry_after" in self.faults:
                headers["Retry-After"] = self.faults["plain_retry_after"]
            self.note("429")
            return h.reply(429, {"statusCode": 429, "message": "ThrottlerException: Too Many "
                                 "Requests", "error": "Too Many Requests"}, headers)
        if self.take("create_500"):
            return self.error(h, 500, "An unexpected error occurred.")
        image = self.build_image(body)
        snapshot = image or body.get("snapshot") or self.args.snapshot[0]
        if image == "":
            return self.error(h, 400, "buildInfo.dockerfileContent must start with FROM <image>")
        if image:
            self.note("build cpu=%s memory=%s" % (body.get("cpu"), body.get("memory")))
        if image is None and snapshot not in self.args.snapshot + self.args.bare_snapshot:
            return self.error(h, 400, "Snapshot %s not found. Did you add it through the Daytona "
                              "Dashboard?" % snapshot)
        if any(k in body for k in ("cpu", "memory", "disk", "gpu")) and "buildInfo" not in body:
            return self.error(h, 400, "Cannot specify Sandbox resources when using a snapshot")
        with self.lock:
            if len(self.sandboxes) >= self.args.cap:  # destroying ones still hold quota
                self.note("cap")
                return self.error(h, 400, "Total CPU limit exceeded. Maximum allowed: %d.\n"
                                  "To increase concurrency limits, upgrade your organization's "
                                  "Tier by visiting https://app.daytona.io/dashboard/limits."
                                  % self.args.cap)
            sb = {"id": str(uuid.uuid4()), "snapshot": snapshot, "env": body.get("env", {}),
                  "building": 2 if image else 0,  # polls in pending_build, building_snapshot
                  "labels": body.get("labels", {}), "public": bool(body.get("public", False)),
                  "target": body.get("target", "us"),
                  "state": "pending_build" if image else "creating", "desired": "started",
                  "reason": None, "autostop": body.get("autoStopInterval", 15),
                  "autodelete": body.get("autoDeleteInterval", -1), "created": time.time(),
                  "activity": time.time(),
                  "token": nanoid(), "runtime": None, "stuck": self.take("stuck_creating"),
                  "ready": False, "polls": 0,
                  "fail": ("error" if self.take("error_state") else
                           "build_failed" if self.take("build_failed") else None)}
            self.sandboxes[sb["id"]] = sb
            if self.take("fail_in_create"):
                sb["state"], sb["reason"] = "error", "fake: no runner could start it"
                return self.error(h, 400, "Sandbox failed to start: " + sb["reason"])
            dto = self.dto(sb)
        if not sb["stuck"]:
            with_server = snapshot in self.args.snapshot and not sb["fail"]
            threading.Thread(target=self.boot, args=(sb, with_server), daemon=True).start()
        return h.reply(200, dto)

    def delete(self, h, sb):
        if self.take("delete_500"):
            self.note("delete_500")
            return self.error(h, 500, "An unexpected error occurred.")
        if self.take("delete_409"):
            self.note("delete_409")
            return self.error(h, 409, "Sandbox state change in progress")
        with self.lock:
            if sb["desired"] == "destroyed":
                return self.error(h, 409, "Sandbox state change in progress")
            sb["desired"] = "destroyed"
            if sb["state"] in ("started", "stopped", "error", "build_failed", "creating",
                               "pending_build", "building_snapshot"):
                sb["state"] = "destroying"
            dto = self.dto(sb)
        threading.Thread(target=self.destroy, args=(sb,), daemon=True).start()
        return h.reply(200, dto)

    def list(self, h, query):
        try:
            want = json.loads(query.get("labels", "{}"))
        except ValueError:
            return self.error(h, 400, "labels must be a JSON object")
        if not isinstance(want, dict):
            return self.error(h, 400, "labels must be a JSON object")
        limit = int(float(query.get("limit", "100")))
        start = int(query.get("cursor", "0") or "0")
        with self.lock:
            rows = [self.dto(s) for s in self.sandboxes.values()
                    if all(s["labels"].get(k) == v for k, v in want.items())]
        rows.sort(key=lambda r: r["id"])
        more = start + limit < len(rows)
        out = {"items": rows[start:start + limit], "nextCursor": str(start + limit) if more else None}
        return h.reply(200, out)

    # ---- toolbox (in-sandbox daemon, through the toolbox proxy) ----

    def toolbox(self, h, method, path, body):
        """{toolboxProxyUrl}/{id}/process/… — checked as the spec's /toolbox/{id}/toolbox/… form."""
        parts = path.strip("/").split("/")  # toolbox, <id>, process, …
        if len(parts) < 3:
            return self.error(h, 404, "Cannot %s %s" % (method, path))
        h.api_path = "/api/toolbox/%s/toolbox/%s" % (parts[1], "/".join(parts[2:]))
        if h.headers.get("Authorization") != "Bearer " + self.args.api_key:
            return self.error(h, 401, "Invalid credentials")
        problems = self.spec.check_request(method, h.api_path, {}, body)
        if problems:
            return self.error(h, 400, ", ".join(problems))
        sb = self.lookup(h, parts[1])
        if sb is None:
            return None
        with self.lock:
            started = sb["state"] == "started"
        if not started:
            return self.error(h, 400, "Sandbox is not started")
        rest = parts[2:]
        if rest == ["process", "session"] and method == "POST":
            return h.reply(200)
        if len(rest) == 4 and rest[:2] == ["process", "session"] and rest[3] == "exec":
            return self.exec_async(h, sb, body)
        return self.error(h, 404, "Cannot %s %s" % (method, path))

    def exec_async(self, h, sb, body):
        """Runs "[K=V …] <path>/agentix-server" in the background: the only command the fake
        knows. The server's bind address is the fake's business; other K=V reach its env."""
        words = body["command"].split()
        env = dict(sb["env"])
        while words and "=" in words[0]:
            k, _, v = words.pop(0).partition("=")
            if not k.startswith("AGENTIX_BIND_") and k != "AGENTIX_PORT_FILE":
                env[k] = v
        if len(words) != 1 or not words[0].endswith("agentix-server") or not body.get("runAsync"):
            return self.error(h, 400, "the fake runs only '[K=V …] agentix-server' with runAsync")
        if not self.launch(sb, env):
            return self.error(h, 500, "An unexpected error occurred.")
        return h.reply(202, {"cmdId": str(uuid.uuid4())})

    # ---- proxy ----

    def proxy_target(self, h):
        host = h.headers.get("Host", "").split(":")[0].lower()
        suffix = "." + self.args.proxy_domain
        if not host.endswith(suffix):
            return None
        port, _, sid = host[:-len(suffix)].partition("-")
        with self.lock:
            sb = self.sandboxes.get(sid)
            if sb is None:
                return (404, {"message": "sandbox not found"}, {})
            token = h.headers.get("X-Daytona-Preview-Token")
            auth = h.headers.get("Authorization", "")
            if token is None and auth.startswith("Bearer "):
                token = auth[len("Bearer "):]
            if "DAYTONA_SANDBOX_AUTH_KEY=" in h.path:
                token = h.path.split("DAYTONA_SANDBOX_AUTH_KEY=", 1)[1].split("&")[0]
            if not sb["public"] and token != sb["token"]:
                # Daytona redirects to its login page; the fake's stays on 127.0.0.1 (itself).
                return (307, None, {"Location": "http://127.0.0.1:%d/_fake/preview-login?"
                                    "sandbox=%s" % (self.port, sid)})
            if sb["runtime"] is None or port != "8000" or sb["state"] != "started":
                return (502, {"message": "no server is listening on port %s of sandbox %s"
                              % (port, sid)}, {})
            sb["activity"] = time.time()  # proxied traffic keeps a sandbox from auto-stopping
            return sb["runtime"].port


def main():
    def extra(p):
        p.add_argument("--proxy-domain", default="proxy.daytona.test")
        p.add_argument("--snapshot", action="append", default=None,
                       help="snapshots whose entrypoint starts agentix-server (default: agentix)")
        p.add_argument("--bare-snapshot", action="append", default=[],
                       help="snapshots that start nothing (the toolbox must start the server)")
        p.add_argument("--minute-s", type=float, default=60.0,
                       help="seconds in an auto-stop minute (tests shorten it)")

    args = fakebase.parse_args(sys.argv[1:], extra)
    if not args.snapshot:
        args.snapshot = ["agentix"]
    fakebase.serve(Daytona(args))


if __name__ == "__main__":
    main()
