"""Helpers shared by test_limits.py and test_nginx_diff.py: raw keep-alive
clients, concurrent request bursts, /metrics parsing and access-log reading."""
import re
import socket
import threading
import time

from zg import get


class Client:
    """one keep-alive HTTP/1.1 connection; request() returns (status, headers, body)"""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, path="/", headers=None, close=False):
        if self.sock is None:
            self.connect()
        h = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % path
        for k, v in (headers or {}).items():
            h += "%s: %s\r\n" % (k, v)
        if close:
            h += "Connection: close\r\n"
        self.sock.sendall((h + "\r\n").encode())

    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError("closed by the server")
        self.buf += b

    def read(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, body

    def request(self, path="/", headers=None, close=False):
        self.send(path, headers, close)
        return self.read()


def one(port, path="/", headers=None, timeout=10.0):
    """a request on its own connection: (status, headers, body)"""
    c = Client(port, timeout)
    try:
        return c.request(path, headers, close=True)
    finally:
        c.close()


def parallel(port, reqs, stagger=0.0, timeout=10.0):
    """sends reqs [(path, headers)] each on its own, already connected socket: all
    connected first, then sent `stagger` s apart from one thread, then read.
    Returns [(status, headers, seconds from the first send to this answer)]."""
    clients = []
    for _ in reqs:
        c = Client(port, timeout)
        c.connect()
        clients.append(c)
    t0 = time.monotonic()
    for i, (c, (path, hdrs)) in enumerate(zip(clients, reqs)):
        if stagger and i:
            time.sleep(max(0.0, t0 + i * stagger - time.monotonic()))
        c.send(path, hdrs, close=True)
    out = [None] * len(reqs)

    def rd(i, c):
        try:
            st, h, _ = c.read()
            out[i] = (st, h, time.monotonic() - t0)
        except OSError as e:
            out[i] = (0, {"error": str(e)}, time.monotonic() - t0)
        finally:
            c.close()

    ths = [threading.Thread(target=rd, args=(i, c)) for i, c in enumerate(clients)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout + 5)
    return out


class Burst:
    """sends reqs [(path, headers)] at once, each on its own, already connected socket,
    and reads the answers in threads as they come: out[i] is None until request i is
    answered, then (status, headers, seconds from the first send to this answer).
    For a test that must act while some answers are still out (parallel() waits for
    all of them)."""

    def __init__(self, port, reqs, timeout=10.0):
        self.timeout = timeout
        clients = []
        for _ in reqs:
            c = Client(port, timeout)
            c.connect()
            clients.append(c)
        self.out = [None] * len(reqs)
        self.t0 = time.monotonic()
        for c, (path, hdrs) in zip(clients, reqs):
            c.send(path, hdrs, close=True)
        self.threads = [threading.Thread(target=self._read, args=(i, c), daemon=True)
                        for i, c in enumerate(clients)]
        for t in self.threads:
            t.start()

    def _read(self, i, c):
        try:
            st, h, _ = c.read()
            self.out[i] = (st, h, time.monotonic() - self.t0)
        except OSError as e:
            self.out[i] = (0, {"error": str(e)}, time.monotonic() - self.t0)
        finally:
            c.close()

    def statuses(self):
        """the statuses answered so far"""
        return [o[0] for o in self.out if o is not None]

    def join(self):
        for t in self.threads:
            t.join(self.timeout + 5)
        return self.out


def metrics(port):
    """/metrics as {'name{labels}': value}"""
    st, _, body = get(port, "/metrics")
    assert st == 200, st
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def metric(port, name, **labels):
    """sum of the samples of one family whose labels include `labels`"""
    total = 0.0
    for k, v in metrics(port).items():
        m = re.match(r"([a-z_]+)(?:\{(.*)\})?$", k)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(a) == str(b) for a, b in labels.items()):
            total += v
    return total


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f]
    except OSError:
        return []
