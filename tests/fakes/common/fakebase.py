"""fakebase.py — what the E2B and Daytona fakes share: a threaded HTTP server on 127.0.0.1, JSON
replies checked against the official spec, per-sandbox real agentix-server processes, the
Host-routed proxy to them (WebSocket upgrades piped both ways), and the control endpoints tests
use (/_fake/faults, /_fake/stats, /_fake/kill/<id>).

Flow: backend (C, libcurl) → fake API; client (C, the engine) → fake proxy → agentix-server →
worker. With --tls-dir the public port speaks TLS (certificate from that folder), as the real
services do, in front of the same plain HTTP server.
"""
import argparse
import json
import os
import shutil
import signal
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20  # requests larger than this are refused (the fake's input bound)


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % int(ts * 1000 % 1000)


# ---- runtime processes ----

class Runtime:
    """One real agentix-server, started the way the local backend starts one."""

    def __init__(self, server, module_path, env_extra):
        self.dir = tempfile.mkdtemp(prefix="agx-fake-")
        port_file = os.path.join(self.dir, "port")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIX_")}
        env.update(env_extra)  # the sandbox's env, then what the fake's routing needs
        env.update({"AGENTIX_BIND_HOST": "127.0.0.1", "AGENTIX_BIND_PORT": "0",
                    "AGENTIX_PORT_FILE": port_file, "AGENTIX_MODULE_PATH": module_path,
                    "AGENTIX_FILES_ROOT": self.dir})
        self.port = None
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([server], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.port_file = port_file

    def wait_port(self, timeout):
        """The port once the server listens; None if it died or took longer than timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return None
            try:
                with open(self.port_file, encoding="ascii") as f:
                    text = f.read().strip()
                if text.isdigit():
                    self.port = int(text)
                    return self.port
            except OSError:
                pass
            time.sleep(0.02)
        return None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=5)
        try:  # the worker and anything else left in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the service ----

class FakeService:
    """Subclasses implement api(handler, method, path, query, body) and proxy_target(handler)."""

    name = "fake"

    def __init__(self, args, spec):
        self.args = args
        self.spec = spec
        self.lock = threading.RLock()
        self.faults = {}
        self.events = []  # (monotonic time, what) for tests that check waits
        self.requests = 0
        self.port = 0  # where the fake listens, set by serve()

    # faults are counters: take() consumes one
    def take(self, fault):
        with self.lock:
            n = self.faults.get(fault, 0)
            if n:
                self.faults[fault] = n - 1
                return True
            return False

    def note(self, what):
        with self.lock:
            self.events.append((time.monotonic(), what))

    def start_runtime(self, env_extra):
        return Runtime(self.args.server, self.args.module_path, env_extra)

    def stats(self):
        return {"live": self.live_count(), "requests": self.requests,
                "violations": list(self.spec.violations), "checked": self.spec.checked,
                "events": [[round(t, 3), w] for t, w in self.events]}

    def shutdown_all(self):
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service = None  # set by serve()

    def log_message(self, fmt, *args):
        if os.environ.get("AGX_FAKE_VERBOSE"):
            sys.stderr.write("[%s] %s\n" % (self.service.name, fmt % args))

    # ---- replies ----

    def reply(self, status, body=None, headers=None, check=True):
        """Sends JSON (or nothing for None) and checks it against the spec for API paths."""
        data = b"" if body is None else json.dumps(body).encode()
        if check and self.api_path is not None:
            self.service.spec.check_response(self.command, self.api_path, status, body)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        if not n.isdigit() or int(n) > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(int(n))

    # ---- dispatch ----

    def handle_any(self):
        self.api_path = None
        svc = self.service
        target = svc.proxy_target(self)
        if target is not None:
            self.close_connection = True
            return self.proxy(target)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.reply(413, {"message": "request body too large"}, check=False)
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return svc.error(self, 400, "request body is not JSON")
        with svc.lock:
            svc.requests += 1
        if url.path.startswith("/_fake/"):
            return self.control(url.path, body)
        self.api_path = url.path
        svc.api(self, self.command, url.path, query, body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = handle_any

    def control(self, path, body):
        svc = self.service
        if path == "/_fake/stats":
            return self.reply(200, svc.stats(), check=False)
        if path == "/_fake/faults" and isinstance(body, dict):
            with svc.lock:
                svc.faults.update(body)
            return self.reply(200, svc.faults, check=False)
        if path.startswith("/_fake/kill/"):
            ok = svc.kill(path[len("/_fake/kill/"):])
            return self.reply(200 if ok else 404, {"killed": ok}, check=False)
        return self.reply(404, {"message": "no such control endpoint"}, check=False)

    # ---- proxy ----

    def proxy(self, target):
        """target: a port to pipe to, or (status, body, headers) to answer instead."""
        if not isinstance(target, int):
            status, body, headers = target
            return self.reply(status, body, headers, check=False)
        try:
            up = socket.create_connection(("127.0.0.1", target), timeout=5)
        except OSError:
            return self.reply(502, {"message": "upstream refused"}, check=False)
        up.settimeout(None)
        upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
        head = ["%s %s HTTP/1.1" % (self.command, self.path)]
        for k, v in self.headers.items():
            if not upgrade and k.lower() in ("connection", "keep-alive"):
                continue
            head.append("%s: %s" % (k, v))
        if not upgrade:
            head.append("Connection: close")
        try:
            up.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            self.pipe(up)
        finally:
            up.close()

    def pipe(self, up):
        client = self.connection

        def down():
            try:
                while True:
                    data = up.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        t = threading.Thread(target=down, daemon=True)
        t.start()
        try:
            while True:
                data = self.rfile.read1(65536)  # buffered bytes first, then the socket
                if not data:
                    break
                up.sendall(data)
        except (OSError, ValueError):
            pass
        try:
            up.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        t.join(timeout=30)


class TlsFront:
    """TLS on the public port, the plain HTTP server behind it. One thread per connection: the
    handshake (bounded), then both directions pumped over non-blocking sockets — an SSL socket
    must never be used by two threads at once, so the proxy's two-thread pipe cannot sit on it."""

    CAP = 1 << 20  # bytes buffered per direction before reading that side pauses

    def __init__(self, tls_dir, backend_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(tls_dir, "server.crt"),
                                 os.path.join(tls_dir, "server.key"))
        self.backend = backend_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve_one, args=(raw,), daemon=True).start()

    def serve_one(self, raw):
        tls = up = None
        try:
            raw.settimeout(30)
            tls = self.ctx.wrap_socket(raw, server_side=True)  # a client refusing us ends here
            up = socket.create_connection(("127.0.0.1", self.backend), timeout=5)
            self.pump(tls, up)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in (tls, up, raw):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    @classmethod
    def pump(cls, tls, plain):
        tls.setblocking(False)
        plain.setblocking(False)
        to_plain, to_tls = bytearray(), bytearray()
        tls_eof = plain_eof = shut = False
        sel = selectors.DefaultSelector()
        sel.register(tls, selectors.EVENT_READ)
        sel.register(plain, selectors.EVENT_READ)
        while True:
            while not tls_eof and len(to_plain) < cls.CAP:  # drains SSL's own buffer too
                try:
                    d = tls.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                except OSError:
                    d = b""
                if not d:
                    tls_eof = True
                to_plain += d
            while not plain_eof and len(to_tls) < cls.CAP:
                try:
                    d = plain.recv(65536)
                except BlockingIOError:
                    break
                except OSError:
                    d = b""
                if not d:
                    plain_eof = True
                to_tls += d
            if to_plain:
                try:
                    del to_plain[:plain.send(to_plain)]
                except BlockingIOError:
                    pass
            if to_tls:
                try:  # a retry after a want-write sends the same bytes again, as SSL requires
                    del to_tls[:tls.send(to_tls[:16384])]
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if tls_eof and not to_plain and not shut:
                plain.shutdown(socket.SHUT_WR)
                shut = True
            if plain_eof and not to_tls:
                return  # the server is done: so is the client's connection
            if tls_eof and shut and plain_eof:
                return
            sel.modify(tls, (selectors.EVENT_READ if not tls_eof and len(to_plain) < cls.CAP else 0)
                       | (selectors.EVENT_WRITE if to_tls else 0) or selectors.EVENT_READ)
            sel.modify(plain, (selectors.EVENT_READ if not plain_eof and len(to_tls) < cls.CAP else 0)
                       | (selectors.EVENT_WRITE if to_plain else 0) or selectors.EVENT_READ)
            sel.select(timeout=1)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # dozens of sessions connect at once
    daemon_threads = True


def parse_args(argv, extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True, help="the agentix-server binary")
    p.add_argument("--module-path", required=True, help="AGENTIX_MODULE_PATH for the servers")
    p.add_argument("--spec", required=True, help="the vendor's OpenAPI file")
    p.add_argument("--api-key", required=True)
    p.add_argument("--cap", type=int, default=100, help="concurrent sandbox cap")
    p.add_argument("--tls-dir", help="serve TLS with server.crt/server.key from this folder")
    if extra:
        extra(p)
    return p.parse_args(argv)


def serve(service):
    """Listens on 127.0.0.1 port 0 (behind a TLS front with --tls-dir), prints 'PORT <n>' (the
    public port) and serves until SIGTERM/SIGINT/stdin EOF."""
    Handler.service = service
    httpd = _Server(("127.0.0.1", 0), Handler)
    service.port = httpd.server_address[1]
    if getattr(service.args, "tls_dir", None):
        service.port = TlsFront(service.args.tls_dir, httpd.server_address[1]).port
    stop = threading.Event()

    def on_signal(_sig, _frm):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("PORT %d" % service.port, flush=True)

    def watch_stdin():  # the test closes our stdin (or dies): shut down
        try:
            while sys.stdin.buffer.read(1):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    httpd.shutdown()
    service.shutdown_all()
