"""The master process: -t / -v / -h / -s, respawn, reload under load, graceful and
fast stop, daemon mode (issue 3)."""
import http.client
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time

import zg  # noqa: E402
from zg import (BIN, Upstream, Zonegate, free_port, get, wait_for, wait_port,
                zonegate_t)

GOOD = """
worker_processes 2;
error_log {dir}/error.log info;
http {{
    limit_req_zone $binary_remote_addr zone=one:1m rate=10r/s;
    limit_conn_zone $binary_remote_addr zone=conns:1m;
    upstream app {{ zone app 64k; server 127.0.0.1:9; keepalive 4; }}
    server {{
        listen 127.0.0.1:1;
        location / {{
            limit_req zone=one burst=5 nodelay;
            limit_conn conns 10;
            proxy_pass http://app;
        }}
    }}
}}
"""

# (name, config text, line of the error, what the message must name)
BAD = [
    ("unknown directive", "worker_processes 1;\nhttp {{\n    frobnicate on;\n}}\n", 3,
     "frobnicate"),
    ("bad arg count", "worker_processes 1 2;\n", 1, "worker_processes"),
    ("bad size", "http {{\n  limit_req_zone $binary_remote_addr zone=one:10q rate=1r/s;\n}}\n",
     2, "limit_req_zone"),
    ("bad rate", "http {{\n\n  limit_req_zone $binary_remote_addr zone=one:1m rate=fast;\n}}\n",
     3, "limit_req_zone"),
    ("unknown zone", "http {{\n  server {{\n    listen 127.0.0.1:1;\n"
     "    location / {{\n      limit_req zone=nope;\n    }}\n  }}\n}}\n", 5, "limit_req"),
    ("missing include", "http {{\n  include {dir}/nonexistent.conf;\n}}\n", 2,
     "nonexistent.conf"),
    ("unclosed block", "http {{\n  server {{\n    listen 127.0.0.1:1;\n", 4, '"}"'),
]

BASE = """
worker_processes {workers};
http {{
    upstream app {{ server {up}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; proxy_read_timeout 5s; }}
        location = /ver {{ return 200 "{ver}"; }}
        location = /metrics {{ metrics; }}
        {extra}
    }}
}}
"""


def run(*args, timeout=20):
    p = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def start(workers=2, ver="v1", extra="", up=None, **kw):
    up = up or Upstream("a")
    port = free_port()
    z = Zonegate(BASE, wait_ports=[port], port=port, workers=workers, ver=ver, extra=extra,
                 up=up.addr, **kw)
    z.port, z.up = port, up
    z.wait_workers(workers)
    return z, port


def metric(port, name):
    body = get(port, "/metrics")[2].decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    assert m, (name, body)
    return int(m.group(1))


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ---- command line ----

def test_t_good_config():
    rc, out, path = zonegate_t(GOOD)
    assert rc == 0, out
    assert "syntax is ok" in out and "test is successful" in out, out
    assert path in out


def test_t_bad_configs_name_file_line_directive():
    bad = []
    for name, text, line, what in BAD:
        rc, out, path = zonegate_t(text)
        assert rc == 1, (name, rc, out)
        assert "test failed" in out, (name, out)
        assert "%s:%d" % (path, line) in out, (name, out)
        # the directive as a word of its own ("limit_req" is not "limit_req_zone")
        if not re.search(r"(?<![\w$])%s(?!\w)" % re.escape(what), out):
            bad.append((name, what, out.split("\n")[0]))
    assert not bad, bad


def test_v_and_h():
    rc, out = run("-v")
    assert rc == 0 and re.match(r"^zonegate version: zonegate/\d+\.\d+\.\d+\n$", out), out
    rc, out = run("-h")
    assert rc == 0 and out.startswith("usage: zonegate") and "-s SIG" in out, out
    rc, out = run("-x")
    assert rc == 1 and "usage" in out, out
    rc, out = run("-c", "/nonexistent/zonegate.conf", "-s", "reload")
    assert rc == 1 and "/nonexistent/zonegate.conf" in out, out


def test_s_without_running_master():
    rc, out, path = zonegate_t("pid {dir}/zonegate.pid;\n")
    rc, out = run("-c", path, "-s", "reload")
    assert rc == 1 and "zonegate.pid" in out, out
    rc, out = run("-c", path, "-s", "bogus")
    assert rc == 1 and "bogus" in out, out


def test_s_reload():
    z, port = start(ver="v1")
    old = z.workers()
    assert get(port, "/ver")[2] == b"v1"
    z.rewrite(BASE, port=port, workers=2, ver="v2", extra="", up=z.up.addr)
    rc, out = run("-c", z.conf, "-s", "reload")
    assert rc == 0, out
    assert wait_for(lambda: get(port, "/ver")[2] == b"v2", 5)
    z.wait_workers(2, gone=old)
    assert metric(port, "zonegate_reloads_total") == 1
    assert "reconfiguring" in z.error_log()
    z.stop()


def test_s_stop():
    z, port = start()
    with open(z.pid_file) as f:
        assert int(f.read()) == z.proc.pid
    rc, out = run("-c", z.conf, "-s", "stop")
    assert rc == 0, out
    z.proc.wait(5 * zg.SLOW)
    assert z.proc.returncode == 0
    assert not os.path.exists(z.pid_file)
    assert wait_for(lambda: not z.workers(), 3)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert False, "still listening"
    except OSError:
        pass


def in_flight(z, before):
    """waits until the upstream has received a request after `before` were counted"""
    assert wait_for(lambda: z.up.count() > before, 5), "the request never reached the upstream"


def test_s_quit_is_graceful():
    z, port = start()
    res = {}
    before = z.up.count()
    t = threading.Thread(target=lambda: res.update(r=get(port, "/slow?ms=800")))
    t.start()
    in_flight(z, before)
    rc, out = run("-c", z.conf, "-s", "quit")
    assert rc == 0, out
    t.join(10 * zg.SLOW)
    assert res["r"][0] == 200 and res["r"][2] == b"slow a", res
    z.proc.wait(5 * zg.SLOW)
    assert z.proc.returncode == 0


def test_s_reopen():
    z, port = start()
    os.rename(z.log, z.log + ".1")
    rc, out = run("-c", z.conf, "-s", "reopen")
    assert rc == 0, out
    assert wait_for(lambda: os.path.exists(z.log), 3)
    # the master writes to the new file after the reopen
    z.reload()
    assert wait_for(lambda: "reconfiguring" in z.error_log(), 3)
    with open(z.log + ".1") as f:
        assert "reconfiguring" not in f.read()
    z.stop()


# ---- respawn ----

def test_kill9_worker_respawns():
    z, port = start()
    old = z.workers()
    assert len(old) == 2
    assert metric(port, "zonegate_worker_restarts_total") == 0
    os.kill(old[0], signal.SIGKILL)
    new = z.wait_workers(2, gone=[old[0]])
    assert old[1] in new
    assert re.search(r"\[alert\] \d+#0: worker process %d exited on signal 9" % old[0],
                     z.error_log()), z.error_log()
    for _ in range(20):
        st, _, body = get(port, "/")
        assert st == 200 and body == b"ok a"
    assert metric(port, "zonegate_worker_restarts_total") == 1
    os.kill(new[1], signal.SIGKILL)
    z.wait_workers(2, gone=[new[1]])
    assert metric(port, "zonegate_worker_restarts_total") == 2
    assert z.proc.poll() is None
    z.stop()


# ---- reload ----

class Client(threading.Thread):
    """A keep-alive client on its own connection, as a real client library: a request
    that was never answered (the server closed the idle connection before our request
    was read, or we could not send it) is sent again on a new connection; a reset
    after the request was sent, or any answer other than the expected one, is a
    failure."""

    def __init__(self, port, until, path="/"):
        super().__init__(daemon=True)
        self.port, self.until, self.path = port, until, path
        self.ok = self.failed = self.retried = 0
        self.errors = []

    def once(self, conn):
        for _ in range(5):
            try:
                conn.request("GET", self.path)
            except OSError:
                conn.close()  # nothing was sent: send it again
                self.retried += 1
                continue
            try:
                r = conn.getresponse()
                body = r.read()
            except http.client.RemoteDisconnected:
                conn.close()  # closed without a byte of answer: idempotent, again
                self.retried += 1
                continue
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                return "error %r" % e
            if r.status != 200 or body != b"ok a":
                return "answer %d %r" % (r.status, body[:100])
            return None
        return "never answered"

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while time.time() < self.until:
            err = self.once(conn)
            if err:
                self.failed += 1
                self.errors.append(err)
            else:
                self.ok += 1
        conn.close()


def test_sighup_under_load_loses_nothing():
    z, port = start(ver="v0")
    first = z.workers()
    clients = [Client(port, time.time() + 3.0 * zg.SLOW) for _ in range(4)]
    for c in clients:
        c.start()
    for i in range(1, 6):
        # each reload happens while the clients are busy
        ok = sum(c.ok for c in clients)
        assert wait_for(lambda: sum(c.ok for c in clients) >= ok + 20, 5), "no progress"
        z.rewrite(BASE, port=port, workers=2, ver="v%d" % i, extra="", up=z.up.addr)
        z.reload()
        assert wait_for(lambda: get(port, "/ver")[2] == b"v%d" % i, 3)
    for c in clients:
        c.until = min(c.until, time.time() + 0.3)
    for c in clients:
        c.join(10 * zg.SLOW)
    ok = sum(c.ok for c in clients)
    failed = sum(c.failed for c in clients)
    errors = [e for c in clients for e in c.errors]
    retried = sum(c.retried for c in clients)
    print("sighup: %d ok, %d resent, %d failed" % (ok, retried, failed))
    assert failed == 0, (failed, ok, errors[:10])
    assert ok >= 5 * 20, ok
    assert get(port, "/ver")[2] == b"v5"
    z.wait_workers(2, gone=first)
    # every reload started two new workers (the master logs each start)
    assert z.error_log().count("start worker process") == 2 + 2 * 5, z.error_log()
    assert metric(port, "zonegate_reloads_total") == 5
    assert "[alert]" not in z.error_log(), z.error_log()
    z.stop()


def test_bad_reload_keeps_old_config():
    z, port = start(ver="v1")
    old = z.workers()
    with open(z.conf, "a") as f:
        f.write("\nbogus_directive on;\n")
    z.reload()
    assert wait_for(lambda: "reload failed" in z.error_log(), 3), z.error_log()
    assert 'unknown directive "bogus_directive"' in z.error_log()
    time.sleep(0.2)
    assert z.workers() == old
    for _ in range(10):
        st, _, body = get(port, "/ver")
        assert (st, body) == (200, b"v1")
    assert get(port, "/")[2] == b"ok a"
    assert metric(port, "zonegate_reload_failures_total") == 1
    assert metric(port, "zonegate_reloads_total") == 0
    # a port that cannot be bound fails the reload as well, and nothing changes
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    z.rewrite(BASE, port=port, workers=2, ver="v2", up=z.up.addr,
              extra="} server { listen 127.0.0.1:%d;" % busy.getsockname()[1])
    z.reload()
    assert wait_for(lambda: z.error_log().count("reload failed") == 2, 3), z.error_log()
    assert "bind() to 127.0.0.1:%d failed" % busy.getsockname()[1] in z.error_log()
    assert get(port, "/ver")[2] == b"v1"
    assert z.workers() == old
    busy.close()
    z.stop()


def test_reload_adds_and_moves_listen_ports():
    z, port = start(ver="v1")
    p2 = free_port()
    # same port kept, a second one added
    z.rewrite(BASE, port=port, workers=2, ver="v2", up=z.up.addr,
              extra="} server { listen 127.0.0.1:%d; location / { return 200 \"two\"; }"
              % p2)
    z.reload()
    wait_port(p2, 5)
    assert get(p2, "/")[2] == b"two"
    assert wait_for(lambda: get(port, "/ver")[2] == b"v2", 3)
    # the main server moves to a new port: the old one stops answering
    p3 = free_port()
    z.rewrite(BASE, port=p3, workers=2, ver="v3", up=z.up.addr, extra="")
    z.reload()
    wait_port(p3, 5)
    assert get(p3, "/ver")[2] == b"v3"
    assert get(p3, "/")[2] == b"ok a"

    def closed(p):
        try:
            socket.create_connection(("127.0.0.1", p), timeout=1).close()
            return False
        except OSError:
            return True
    assert wait_for(lambda: closed(port) and closed(p2), 5)
    assert z.proc.poll() is None
    z.stop()


# ---- stop ----

def test_sigquit_finishes_inflight_request():
    z, port = start()
    res = {}

    def slow():
        res["r"] = get(port, "/slow?ms=1000")
        res["t"] = time.time()
    before = z.up.count()
    t = threading.Thread(target=slow)
    t.start()
    in_flight(z, before)
    z.kill(signal.SIGQUIT)
    t.join(10 * zg.SLOW)
    assert res.get("r") and res["r"][0] == 200 and res["r"][2] == b"slow a", res
    z.proc.wait(5 * zg.SLOW)
    assert z.proc.returncode == 0
    # the master waited for the request: it exited after the answer was sent
    assert time.time() >= res["t"]
    assert "exit" in z.error_log()
    assert wait_for(lambda: not z.workers(), 2)


def test_sigterm_exits_quickly():
    z, port = start()
    # a request hanging on the upstream (for ever) does not hold a fast stop
    before = z.up.count()
    t = threading.Thread(target=lambda: _ignore(get, port, "/hang", timeout=120), daemon=True)
    t.start()
    in_flight(z, before)
    z.kill(signal.SIGTERM)
    z.proc.wait(10 * zg.SLOW)  # raises if the stop waits for the request
    assert z.proc.returncode == 0
    assert not os.path.exists(z.pid_file)


def _ignore(f, *a, **kw):
    try:
        f(*a, **kw)
    except Exception:
        pass


def test_daemon_mode():
    port = free_port()
    up = Upstream("a")
    d = tempfile.mkdtemp(prefix="zgtest-")
    conf = os.path.join(d, "zonegate.conf")
    pid_file = os.path.join(d, "zonegate.pid")
    with open(conf, "w") as f:
        f.write("daemon on;\nerror_log %s/error.log info;\npid %s;\n" % (d, pid_file))
        f.write(BASE.format(port=port, workers=2, ver="d", extra="", up=up.addr))
    # the command returns (the daemon goes on in the background)
    p = subprocess.run([BIN, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10 * zg.SLOW)
    assert p.returncode == 0, p.stdout
    assert wait_for(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(), 3)
    pid = int(open(pid_file).read())
    try:
        wait_port(port, 5)
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert fields[0] != "Z"
        assert int(fields[3]) == pid  # a session leader: setsid()
        assert get(port, "/ver")[2] == b"d"
        assert get(port, "/")[2] == b"ok a"
        rc, out = run("-c", conf, "-s", "stop")
        assert rc == 0, out
        assert wait_for(lambda: gone(pid), 5), "daemon did not stop"
        assert not os.path.exists(pid_file)
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


# ---- balance: one SO_REUSEPORT socket per worker ----

def worker_metrics(port):
    """{pid: (slot, connections, requests)} of the running workers, from /metrics"""
    body = get(port, "/metrics")[2].decode()
    pids = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^zonegate_worker_pid\{worker="(\d+)",index="\d+"\} (\d+)$', body, re.M)}
    conns = dict(re.findall(r'^zonegate_worker_connections_total\{worker="(\d+)"\} (\d+)$',
                            body, re.M))
    reqs = dict(re.findall(r'^zonegate_worker_requests_total\{worker="(\d+)"\} (\d+)$',
                           body, re.M))
    return {pid: (slot, int(conns[slot]), int(reqs[slot])) for slot, pid in pids.items()}


def answered(socks, got):
    """reads what the sockets have; the index of every socket that has a whole
    answer goes into `got`"""
    r, _, _ = select.select([s for i, s in enumerate(socks) if i not in got], [], [], 0.05)
    for s in r:
        i = socks.index(s)
        d = s.recv(65536)
        if d.endswith(b"v1"):
            got.add(i)
    return len(got)


def test_connections_spread_over_workers():
    """Each worker accepts on a socket of its own: while one worker is stopped, the
    connections the kernel gave its socket wait there for it instead of being taken
    by the other worker (with one shared socket, the running worker takes all)."""
    z, port = start(workers=2)
    before = worker_metrics(port)
    assert sorted(before) == z.workers(), (before, z.workers())
    stopped = z.workers()[0]
    os.kill(stopped, signal.SIGSTOP)
    socks, got = [], set()
    try:
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /ver HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        # the running worker answers what it accepted (with one shared socket: all)
        assert wait_for(lambda: answered(socks, got) > 0, 5)
        wait_for(lambda: answered(socks, got) == len(socks), 1)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert wait_for(lambda: answered(socks, got) == len(socks), 10), len(got)
    after = worker_metrics(port)
    new = {pid: after[pid][1] - before[pid][1] for pid in before}
    print("connections per worker: %s" % new)
    assert all(n > 0 for n in new.values()), new
    assert sum(new.values()) >= 64, new
    for s in socks:
        s.close()
    z.stop()


class OneShot(threading.Thread):
    """A client that opens a new connection for every request: a connection queued
    on a socket that no worker accepts from any more times out, one reset by a
    closing socket fails."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop = port, False
        self.ok, self.errors = 0, []

    def run(self):
        while not self.stop:
            try:
                st, _, body = get(self.port, "/", timeout=5 * zg.SLOW)
                if st == 200 and body == b"ok a":
                    self.ok += 1
                else:
                    self.errors.append("answer %d %r" % (st, body[:100]))
            except Exception as e:  # noqa: B902
                self.errors.append(repr(e))


def test_reload_and_respawn_with_new_connections_lose_nothing():
    """New connections keep arriving while reloads change the number of workers
    (2 -> 3 -> 1 -> 2) and a worker is killed: each worker index keeps its socket
    across reloads and respawns, a reload to fewer workers leaves the surplus sockets
    to every new worker, so no connection waits in a queue nobody reads."""
    z, port = start(workers=2, ver="v0")
    clients = [OneShot(port) for _ in range(4)]
    for c in clients:
        c.start()
    try:
        for i, n in enumerate([3, 1, 2], 1):
            ok = sum(c.ok for c in clients)
            assert wait_for(lambda: sum(c.ok for c in clients) >= ok + 20, 5), "no progress"
            z.rewrite(BASE, port=port, workers=n, ver="v%d" % i, extra="", up=z.up.addr)
            z.reload()
            assert wait_for(lambda: get(port, "/ver")[2] == b"v%d" % i, 3)
            z.wait_workers(n)
        ok = sum(c.ok for c in clients)
        victim = z.workers()[0]
        os.kill(victim, signal.SIGKILL)
        z.wait_workers(2, gone=[victim])
        assert wait_for(lambda: sum(c.ok for c in clients) >= ok + 40, 5), "no progress"
    finally:
        for c in clients:
            c.stop = True
        for c in clients:
            c.join(10 * zg.SLOW)
    errors = [e for c in clients for e in c.errors]
    print("new connections through reloads: %d ok, %d failed %s"
          % (sum(c.ok for c in clients), len(errors), errors[:4]))
    # the request in flight on the killed worker may fail, one per client at most
    assert len(errors) <= len(clients), errors[:10]
    assert not [e for e in errors if "timed out" in e], errors[:10]
    # both workers of the last generation accept (sockets 0 and 1, and 2 shared)
    conns = worker_metrics(port)
    assert len(conns) == 2, conns
    z.stop()
