"""Cluster sync on a Redis Cluster (issue 20): three masters, zones spread over the
shards by their hash tags, and a resharding under traffic that moves a zone's slot."""
import subprocess
import time

import sync_util
from sync_util import Background, Redis, metric
from zg import Zonegate, free_port, wait_for

PW = "cluster-pw"

CONF = """
worker_processes 2;
http {{
    limit_req_zone $binary_remote_addr zone={a}:1m rate=30r/s {sync};
    limit_req_zone $binary_remote_addr zone={b}:1m rate=30r/s {sync};
    limit_req_zone $binary_remote_addr zone={c}:1m rate=30r/s {sync};
    limit_req_status 429;
    upstream back {{ server 127.0.0.1:{back}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location /a {{ limit_req zone={a} burst=10 nodelay; proxy_pass http://back; }}
        location /b {{ limit_req zone={b} burst=10 nodelay; proxy_pass http://back; }}
        location /c {{ limit_req zone={c} burst=10 nodelay; proxy_pass http://back; }}
        location = /metrics {{ metrics; }}
    }}
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def crc16(data):
    crc = 0
    for ch in data:
        crc ^= ch << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def slot(name):
    return crc16(name.encode()) & 16383


def name_in(lo, hi):
    """a zone name whose hash tag falls in slots lo..hi"""
    for i in range(100000):
        n = "z%d" % i
        if lo <= slot(n) <= hi:
            return n
    raise AssertionError("no name")


def owner(nodes, s):
    """the node (Redis) that owns slot s, from CLUSTER SLOTS as nodes[0] sees it"""
    out = nodes[0].cli("cluster", "slots").split()
    for n in nodes:
        for i in range(len(out) - 2):
            if out[i].isdigit() and out[i + 1].isdigit() and out[i + 2] == "127.0.0.1" \
                    and int(out[i]) <= s <= int(out[i + 1]) and out[i + 3] == str(n.port):
                return n
    return None


def test_sync_cluster_zones_on_shards_and_resharding():
    # the bus port is chosen too (by default port + 10000, which may be taken or
    # beyond 65535)
    # every node wants a password: zonegate authenticates each connection, the slot
    # map's too
    nodes = [Redis(args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-node-timeout", "2000", "--cluster-port", str(free_port()),
                         "--requirepass", PW, "--masterauth", PW], password=PW)
             for _ in range(3)]
    out = subprocess.run(["redis-cli", "-a", PW, "--no-auth-warning", "--cluster", "create"] +
                         ["127.0.0.1:%d" % n.port for n in nodes] +
                         ["--cluster-replicas", "0", "--cluster-yes"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert out.returncode == 0, out.stdout.decode()
    assert wait_for(lambda: all("cluster_state:ok" in n.cli("cluster", "info") for n in nodes),
                    20)
    # create gives the first node 0-5460, the second 5461-10922, the third the rest;
    # zone a sits among the first node's lowest slots, which the resharding moves
    a, b, c = name_in(0, 300), name_in(5461, 10922), name_in(10923, 16383)
    assert owner(nodes, slot(a)) is nodes[0] and owner(nodes, slot(b)) is nodes[1]
    sync = "sync=redis-cluster://:%s@127.0.0.1:%d sync_interval=50ms" % (PW, nodes[0].port)
    hs = []
    for _ in range(2):
        port, back = free_port(), free_port()
        hs.append((Zonegate(CONF, wait_ports=[port, back], port=port, back=back, sync=sync,
                            a=a, b=b, c=c), port))
    ports = [p for _, p in hs]
    for zn in (a, b, c):
        assert wait_for(lambda: all(metric(p, "zonegate_sync_up", zn) == 1 for p in ports), 10)
    bg = Background([p for p in ports for _ in range(3)], 20, ["/a", "/b", "/c"] * 2)
    # each zone's keys live on the master of its slot
    for zn, n in ((a, nodes[0]), (b, nodes[1]), (c, nodes[2])):
        assert wait_for(lambda: n.keys("zg:{%s}:*" % zn), 5), zn
        assert not any(m.keys("zg:{%s}:*" % zn) for m in nodes if m is not n), zn
    bg.stop()

    # a resharding under traffic moves zone a's slot from the first to the third node
    bg = Background([p for p in ports for _ in range(2)], 20, ["/a", "/b"] * 2)
    ids = [n.cli("cluster", "myid").strip() for n in nodes]
    t0 = time.monotonic()
    out = subprocess.run(["redis-cli", "-a", PW, "--no-auth-warning",
                          "--cluster", "reshard", "127.0.0.1:%d" % nodes[0].port,
                          "--cluster-from", ids[0], "--cluster-to", ids[2],
                          "--cluster-slots", "1000", "--cluster-yes"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert out.returncode == 0, out.stdout.decode()[-2000:]
    t1 = time.monotonic()
    assert wait_for(lambda: owner(nodes, slot(a)) is nodes[2], 10)
    b0 = [metric(p, "zonegate_sync_batches_total", a) for p in ports]
    # zonegate follows (MOVED) and keeps syncing zone a, now on the third node
    assert wait_for(lambda: all(metric(p, "zonegate_sync_batches_total", a) > x + 5
                                for p, x in zip(ports, b0)), 10)
    red = [metric(p, "zonegate_sync_redirects_total", a) for p in ports]
    assert all(r >= 1 for r in red), red
    fresh = set(nodes[2].keys("zg:{%s}:*" % a))
    assert fresh and not nodes[0].keys("zg:{%s}:*" % a)
    logs = bg.stop()
    for log in logs:
        assert log and all(st in (200, 429) for _, st, _ in log), \
            [st for _, st, _ in log if st not in (200, 429)][:5]
    for zn in (a, b, c):
        assert all(metric(p, "zonegate_sync_up", zn) == 1 for p in ports)
    print("resharding of 1000 slots took %.1fs; redirects per host %s"
          % (t1 - t0, [metric(p, "zonegate_sync_redirects_total", a) for p in ports]))
    for z, _ in hs:
        assert z.proc.poll() is None
        z.stop()
