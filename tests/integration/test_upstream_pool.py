"""The upstream keep-alive pool under bursts (issue 21): with `keepalive N`, the
connections a burst of responses gives back beyond N stay idle for a moment (at most
4·N) so the next burst reuses them instead of closing and reopening them; once idle
about a second the surplus is closed, least recently used first, down to N."""
import http.client
import os
import re
import threading
import time

from zg import Upstream, Zonegate, free_port, get, wait_for

CONF = """
worker_processes 1;
http {{
    upstream app {{
        server {up};
        keepalive 2;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; proxy_read_timeout 30s; }}
        location = /metrics {{ metrics; }}
    }}
}}
"""


def connects(port):
    body = get(port, "/metrics")[2].decode()
    return int(re.search(r"^zonegate_upstream_connects_total (\d+)$", body, re.M).group(1))


def established(pids, port):
    """connections of pids to 127.0.0.1:port, established"""
    inodes = set()
    for pid in pids:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[2] == "0100007F:%04X" % port and p[3] == "01" and p[9] in inodes:
                n += 1
    return n


def burst(port, up, key, n):
    """n concurrent requests held at the upstream on key, then released; returns
    when all are answered (statuses)"""
    out = []

    def one():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", "/slow?hold=%s" % key)
            r = c.getresponse()
            r.read()
            out.append(r.status)
        finally:
            c.close()
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    up.wait_held(key, n)
    up.release(key)
    for t in ts:
        t.join(30)
    return out


def test_upstream_pool_keeps_a_burst_then_trims_to_keepalive():
    up = Upstream("a")
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, up=up.addr)
    (w,) = z.wait_workers(1)
    assert burst(port, up, "b1", 8) == [200] * 8
    done = time.monotonic()
    c0 = connects(port)
    assert c0 == 8, c0
    assert burst(port, up, "b2", 8) == [200] * 8
    took = time.monotonic() - done
    # the second burst found the first one's 8 connections idle (unless this machine
    # took longer than the 1 s grace to send it: then nothing is asserted about it)
    if took < 0.9:
        assert connects(port) == c0, (connects(port), c0, took)
    # then the surplus goes: 2 stay (keepalive 2)
    assert wait_for(lambda: established([w], up.port) == 2, 10), established([w], up.port)
    # a burst of 12 keeps at most 4 x 2 idle at once
    assert burst(port, up, "b3", 12) == [200] * 12
    assert established([w], up.port) <= 8
    assert wait_for(lambda: established([w], up.port) == 2, 10)
    z.stop()
