"""Harness for zonegate's integration tests: real processes on 127.0.0.1.

Zonegate(conf) writes a config into a fresh temp dir and starts build/zonegate on it;
Upstream(name) starts tests/integration/upstream.py on an ephemeral port.  Every
process started here is registered and killed by the runner after each test."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(ROOT, os.environ.get("ZG_BIN", "build/zonegate"))
PROCS = []  # everything started by a test; the runner cleans up
STOPS = []  # functions that stop a test's background threads; the runner calls them
ASAN = bool(os.environ.get("ZG_ASAN")) or "asan" in os.environ.get("ZG_BIN", "")
# Every wait for a condition is bounded by its timeout times SLOW: ASan processes run
# several times slower, and a busy machine slows both builds.  A wait ends as soon as
# its condition holds, so the factor costs nothing when things go right.
SLOW = float(os.environ.get("ZG_TIME_SCALE", "8" if ASAN else "3"))


def spawn(argv, **kw):
    """Popen in a process group of its own (so the runner can stop the process and
    everything it forked, even if it dies first), registered for cleanup."""
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    PROCS.append(p)
    return p


def group_members(pgids):
    """pids of live (not zombie) processes whose process group is in pgids"""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in pgids:
            out.append(int(pid))
    return out


class Skip(Exception):
    """raised by a test that cannot run here (counted as skipped, not passed)"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0, proc=None):
    end = time.time() + timeout * SLOW
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d not listening after %.1fs" % (port, timeout))


class Upstream:
    def __init__(self, name=None, port=None):
        self.port = port or free_port()
        self.name = name or "u%d" % self.port
        self.proc = spawn(
            [sys.executable, os.path.join(HERE, "upstream.py"), str(self.port), self.name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError("upstream did not start")
        self.addr = "127.0.0.1:%d" % self.port

    def count(self):
        return int(get(self.port, "/__count")[2])

    def held(self, key):
        """how many requests wait on /slow?hold=key now"""
        return int(get(self.port, "/__held?hold=%s" % key)[2])

    def wait_held(self, key, n, timeout=10.0):
        """waits until exactly n requests wait on /slow?hold=key (zonegate let them
        through its limits and they are holding whatever they hold), or fails"""
        assert wait_for(lambda: self.held(key) == n, timeout), \
            "%d requests held on %s, expected %d" % (self.held(key), key, n)

    def release(self, key):
        """answers every request held on key, and lets later ones through at once"""
        get(self.port, "/__release?hold=%s" % key)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Zonegate:
    """conf: config text; may use {dir} (the temp dir) and any keyword given."""

    def __init__(self, conf, wait_ports=None, env=None, check=True, **kw):
        self.dir = tempfile.mkdtemp(prefix="zgtest-")
        kw.setdefault("dir", self.dir)
        self.conf_text = conf.format(**kw)
        self.conf = os.path.join(self.dir, "zonegate.conf")
        with open(self.conf, "w") as f:
            self.write_head(f)
            f.write(self.conf_text)
        self.pid_file = os.path.join(self.dir, "zonegate.pid")
        self.log = os.path.join(self.dir, "error.log")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = spawn([BIN, "-c", self.conf], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=e)
        for p in wait_ports or []:
            wait_port(p, proc=self.proc)

    def write_head(self, f):
        if "error_log" not in self.conf_text:
            f.write("error_log %s info;\n" % os.path.join(self.dir, "error.log"))
        if "pid " not in self.conf_text:
            f.write("pid %s;\n" % os.path.join(self.dir, "zonegate.pid"))

    def rewrite(self, conf, **kw):
        kw.setdefault("dir", self.dir)
        self.conf_text = conf.format(**kw)
        with open(self.conf, "w") as f:
            self.write_head(f)
            f.write(self.conf_text)

    def kill(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.kill(signal.SIGHUP)

    def workers(self):
        """pids of the master's children"""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                    out.append(int(pid))
            except OSError:
                pass
        return sorted(out)

    def wait_workers(self, n, gone=(), timeout=10.0):
        """waits until the master has exactly n workers, none of them in `gone`;
        returns that list of pids (read once), or fails the test"""
        def ok():
            w = self.workers()
            return w if len(w) == n and not set(w) & set(gone) else None
        w = wait_for(ok, timeout)
        assert w, "expected %d workers (not %s), have %s" % (n, list(gone), self.workers())
        return w

    def error_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def zonegate_t(conf_text, **kw):
    """runs `zonegate -t` on a config; returns (exit code, output)"""
    d = tempfile.mkdtemp(prefix="zgtest-")
    kw.setdefault("dir", d)
    path = os.path.join(d, "zonegate.conf")
    with open(path, "w") as f:
        f.write(conf_text.format(**kw))
    p = subprocess.run([BIN, "-t", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    return p.returncode, p.stdout.decode(errors="replace"), path


def request(port, method="GET", path="/", headers=None, body=None, timeout=10):
    """one request on a fresh connection: (status, headers dict (lowercase), body bytes)"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def get(port, path="/", **kw):
    return request(port, "GET", path, **kw)


def raw(port, data, timeout=5.0, read_all=True):
    """sends raw bytes, returns everything the server sends until it closes (or the
    timeout): (bytes, closed)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        closed = False
        end = time.time() + timeout
        while time.time() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            out += b
            if not read_all:
                break
        return out, closed
    finally:
        s.close()


def status_of(resp_bytes):
    """status code of the first response in raw bytes (0 if none)"""
    try:
        return int(resp_bytes.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def wait_for(cond, timeout=10.0, interval=0.05):
    """polls cond() until it returns a true value (returned), for timeout * SLOW
    seconds at most; then returns cond()'s last value"""
    end = time.time() + timeout * SLOW
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    return cond()
