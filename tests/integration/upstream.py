"""A real HTTP/1.1 upstream for the integration tests (threaded, keep-alive).

Paths:
  /                 200 "ok NAME"            (NAME = --name)
  /echo             200 JSON: method, path, headers, body length and sha256
  /big?n=N[&chunked=1][&X-Name=V]   N bytes of a fixed pattern (Content-Length or
                    chunked), with the X-... parameters as response headers
  /slow?ms=M        answers after M ms
  /slow?hold=K[&ms=M]  waits until K is released (GET /__release?hold=K), then M ms
                    (default 0): a request held for exactly as long as a test needs
                    (body=B: answers B instead of "slow NAME")
  /hdr?NAME=V...    the parameters as response headers (code=, body=, chunked=);
                    If-None-Match equal to ETag= gets 304
  /status?code=C[&on=NAME]  answers with status C (with on=: only the upstream NAME,
                    the others 200)
  /close            closes the connection without answering
  /hang             never answers (holds the connection)
  /partial          promises 100000 bytes, sends 10, closes
  /trickle?hold=K&n=N  sends the head and half of N bytes, waits until K is released,
                    then the rest
Every request is counted; GET /__count answers the count (not counted itself),
GET /__conns the number of connections accepted before this one, GET /__open the
number of connections open besides this one, GET /__active the number of requests
being answered (until their last byte is written), GET /__held?hold=K
the number of requests waiting on K now, GET /__release?hold=K releases them (and
any later ones); none of these three is counted."""
import hashlib
import json
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 64


def pattern(n):
    out = bytearray()
    while len(out) < n:
        out += PATTERN[: n - len(out)]
    return bytes(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.conns += 1
            self.server.open += 1

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.open -= 1

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            body = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            return bytes(body)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, body, ctype="text/plain", chunked=False, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Upstream", self.server.name)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, len(body), 65536):
                    part = body[i:i + 65536]
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def handle_any(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/__count":
            self.read_body()
            return self.send(200, str(self.server.count).encode())
        if u.path == "/__conns":
            self.read_body()
            return self.send(200, str(self.server.conns - 1).encode())
        if u.path == "/__active":
            self.read_body()
            with self.server.lock:
                n = self.server.active
            return self.send(200, str(n).encode())
        if u.path == "/__open":
            self.read_body()
            with self.server.lock:
                n = self.server.open - 1
            return self.send(200, str(n).encode())
        if u.path == "/__held":
            self.read_body()
            with self.server.lock:
                n = self.server.waiting.get(q.get("hold"), 0)
            return self.send(200, str(n).encode())
        if u.path == "/__release":
            self.read_body()
            self.server.gate(q.get("hold")).set()
            return self.send(200, b"released")
        with self.server.lock:
            self.server.count += 1
            self.server.active += 1
        try:
            self.answer(u, q)
        finally:
            with self.server.lock:
                self.server.active -= 1

    def answer(self, u, q):
        body = self.read_body()
        p = u.path
        if p == "/echo" or p.startswith("/echo/"):
            info = {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "name": self.server.name,
            }
            return self.send(200, json.dumps(info).encode(), "application/json")
        if p == "/gz":
            # a gzip-encoded pattern of n bytes (the upstream compressed it itself)
            import gzip as gzipmod
            body = gzipmod.compress(pattern(int(q.get("n", "10000"))), mtime=0)
            extra = {"Content-Encoding": "gzip", "ETag": '"gz1"'}
            return self.send(200, body, q.get("ctype", "text/html"),
                             chunked=q.get("chunked") == "1", extra=extra)
        if p == "/json":
            n = int(q.get("n", "10000"))
            items, size = [], 2
            i = 0
            while size < n:
                item = {"id": i, "name": "user%d" % i, "active": i % 3 == 0,
                        "score": (i * 7919) % 1000 / 10.0, "tags": ["a", "b%d" % (i % 5)]}
                items.append(item)
                size += len(json.dumps(item)) + 2
                i += 1
            return self.send(200, json.dumps(items).encode(), "application/json",
                             chunked=q.get("chunked") == "1")
        if p == "/big":
            n = int(q.get("n", "1000"))
            extra = {"ETag": q["etag"]} if "etag" in q else {}
            # X-... parameters become response headers (X-Accel-Limit-Rate, ...)
            extra.update({k: v for k, v in q.items() if k.startswith("X-")})
            return self.send(200, pattern(n), q.get("ctype", "application/octet-stream"),
                             chunked=q.get("chunked") == "1", extra=extra)
        if p == "/slow":
            if "hold" in q:
                key = q["hold"]
                gate = self.server.gate(key)
                with self.server.lock:
                    self.server.waiting[key] = self.server.waiting.get(key, 0) + 1
                try:
                    gate.wait(600)
                finally:
                    with self.server.lock:
                        self.server.waiting[key] -= 1
            time.sleep(int(q.get("ms", "0" if "hold" in q else "1000")) / 1000.0)
            return self.send(200, q["body"].encode() if "body" in q
                             else b"slow " + self.server.name.encode())
        if p == "/hdr":
            # every query parameter but code/chunked/body becomes a response header; an
            # If-None-Match equal to the ETag given gets 304
            extra = {k: v for k, v in q.items() if k not in ("code", "chunked", "body")}
            inm = self.headers.get("If-None-Match")
            if inm is not None and inm == q.get("ETag"):
                self.send_response(304)
                self.send_header("ETag", inm)
                self.end_headers()
                return
            return self.send(int(q.get("code", "200")), q.get("body", "hdr").encode(),
                             extra=extra, chunked=q.get("chunked") == "1")
        if p == "/status":
            # on=NAME: only the upstream named NAME answers with the code, others 200
            code = int(q.get("code", "200"))
            if q.get("on", self.server.name) != self.server.name:
                code = 200
            return self.send(code, b"status " + self.server.name.encode())
        if p == "/close":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if p == "/hang":
            time.sleep(3600)
            return
        if p == "/trickle":
            n = int(q.get("n", "100000"))
            body = pattern(n)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(body[: n // 2])
            self.wfile.flush()
            key = q.get("hold", "t")
            with self.server.lock:
                self.server.waiting[key] = self.server.waiting.get(key, 0) + 1
            try:
                self.server.gate(key).wait(600)
            finally:
                with self.server.lock:
                    self.server.waiting[key] -= 1
            try:
                self.wfile.write(body[n // 2:])
            except OSError:
                pass
            return
        if p == "/partial":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        return self.send(200, b"ok " + self.server.name.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def gate(self, key):
        with self.lock:
            return self.gates.setdefault(key, threading.Event())


def main():
    port = int(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "u%d" % port
    srv = Server(("127.0.0.1", port), Handler)
    srv.name = name
    srv.count = 0
    srv.conns = 0
    srv.open = 0
    srv.active = 0
    srv.lock = threading.Lock()
    srv.gates = {}
    srv.waiting = {}
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
