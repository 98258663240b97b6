"""The stream side of the JSON API and /metrics with 2 workers (issue 17):
/api/1/stream/server_zones fed by status_zone, /api/1/stream/limit_conns,
/api/1/stream/limit_reqs and /api/1/stream/upstreams, each apart from the http
block's zones of the same kinds."""
import json
import os
import signal
import socket

from limits_util import metric
from test_admin import check_promtool
from test_stream import TcpUpstream, stop_clean, until_closed
from zg import SLOW, Zonegate, free_port, get, request, wait_for, zonegate_t

CONF = """
worker_processes 2;
http {{
    limit_conn_zone $binary_remote_addr zone=hconn:64k;
    server {{
        listen 127.0.0.1:{admin};
        location /api/ {{ api write=on; }}
        location = /metrics {{ metrics; }}
    }}
}}
stream {{
    limit_conn_zone $binary_remote_addr zone=sconn:64k;
    limit_req_zone $binary_remote_addr zone=sreq:64k rate=1000r/s;
    upstream backend {{ zone backend 64k; server {upstream}; }}
    server {{
        listen 127.0.0.1:{port};
        status_zone front;
        limit_req zone=sreq burst=100 nodelay;
        limit_conn sconn 2;
        proxy_pass backend;
        proxy_half_close on;
    }}
    server {{
        listen 127.0.0.1:{pport} proxy_protocol;
        status_zone front;
        proxy_pass backend;
    }}
    server {{
        listen 127.0.0.1:{other};
        status_zone other;
        proxy_pass backend;
    }}
}}
"""


def api(admin, path):
    st, _, body = get(admin, "/api/1" + path)
    return st, json.loads(body) if body else None


def zone(admin, name="front"):
    st, v = api(admin, "/stream/server_zones/" + name)
    assert st == 200, (st, v)
    return v


def echo(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        b = s.recv(65536)
        assert b, got
        got += b
    return s


def test_stream_api_zones_and_counters():
    u = TcpUpstream()
    port, pport, other, admin = free_port(), free_port(), free_port(), free_port()
    z = Zonegate(CONF, wait_ports=[admin], port=port, pport=pport, other=other, admin=admin,
                 upstream=u.addr)
    assert api(admin, "")[1] == ["http", "stream", "slabs", "sync"]
    assert api(admin, "/stream")[1] == ["server_zones", "limit_conns", "limit_reqs",
                                        "upstreams"]
    # each block lists its own zones
    assert list(api(admin, "/stream/limit_conns")[1]) == ["sconn"]
    assert list(api(admin, "/http/limit_conns")[1]) == ["hconn"]
    assert list(api(admin, "/stream/limit_reqs")[1]) == ["sreq"]
    assert api(admin, "/http/limit_reqs")[1] == {}
    assert api(admin, "/http/limit_conns/sconn")[0] == 404
    assert api(admin, "/stream/limit_conns/hconn")[0] == 404
    assert list(api(admin, "/stream/upstreams")[1]) == ["backend"]
    assert api(admin, "/http/upstreams/backend")[0] == 404
    assert api(admin, "/stream/server_zones/nosuch")[0] == 404
    assert sorted(api(admin, "/stream/server_zones")[1]) == ["front", "other"]

    # two sessions held open: processing across the workers, the conn zone's active
    held = [echo(port, b"a" * 1000), echo(port, b"b" * 2000)]
    assert wait_for(lambda: zone(admin)["processing"] == 2)
    assert api(admin, "/stream/limit_conns/sconn")[1]["active"] == 2
    # a third is over limit_conn 2: closed with 503
    s = socket.create_connection(("127.0.0.1", port))
    assert until_closed(s) == b""
    s.close()
    for h in held:
        h.shutdown(socket.SHUT_WR)
        assert until_closed(h) is not None
        h.close()
    # a broken PROXY header on the second server of the same zone: 400
    s = socket.create_connection(("127.0.0.1", pport))
    s.sendall(b"GARBAGE\r\n")
    assert until_closed(s) == b""
    s.close()

    def settled():
        v = zone(admin)
        return v["processing"] == 0 and v["sessions"]["total"] == 4
    assert wait_for(settled), zone(admin)
    v = zone(admin)
    assert v["connections"] == 4
    assert v["sessions"] == {"2xx": 2, "4xx": 1, "5xx": 1, "total": 4}
    assert v["received"] == 3000
    # echoed, then "bye 1000" and "bye 2000"
    assert v["sent"] == 3000 + len(b"bye 1000") + len(b"bye 2000")
    assert zone(admin, "other")["connections"] == 0

    sc = api(admin, "/stream/limit_conns/sconn")[1]
    assert sc["active"] == 0 and sc["rejected"] == 1, sc
    assert api(admin, "/stream/limit_reqs/sreq")[1]["passed"] == 3
    peer = api(admin, "/stream/upstreams/backend")[1]["peers"][0]
    assert peer["connections"] == 2 and peer["state"] == "up", peer
    assert peer["sent"] == 3000 and peer["received"] == v["sent"], peer

    # the same figures in /metrics
    assert metric(admin, "zonegate_stream_server_zone_connections_total", zone="front") == 4
    assert metric(admin, "zonegate_stream_server_zone_sessions_total", zone="front",
                  status="5xx") == 1
    assert metric(admin, "zonegate_stream_server_zone_bytes_total", zone="front",
                  direction="received") == 3000
    assert metric(admin, "zonegate_stream_server_zone_processing", zone="front") == 0
    check_promtool(get(admin, "/metrics")[2].decode())
    stop_clean(z)


def test_stream_status_zone_config_errors():
    conf = """
stream {{
    server {{ listen 127.0.0.1:{p}; status_zone a; status_zone b; proxy_pass 127.0.0.1:1; }}
}}
"""
    rc, out, _ = zonegate_t(conf, p=free_port())
    assert rc == 1 and '"status_zone" directive is duplicate' in out, out
    conf = """
http {{ server {{ listen 127.0.0.1:{p}; status_zone a; }} }}
"""
    rc, out, _ = zonegate_t(conf, p=free_port())
    assert rc == 1 and "status_zone" in out, out


def test_stream_server_zone_worker_death_and_reload():
    u = TcpUpstream()
    port, pport, other, admin = free_port(), free_port(), free_port(), free_port()
    z = Zonegate(CONF, wait_ports=[admin], port=port, pport=pport, other=other, admin=admin,
                 upstream=u.addr)
    workers = z.wait_workers(2)
    held = [echo(port, b"a"), echo(port, b"b")]
    assert wait_for(lambda: zone(admin)["processing"] == 2)
    # the workers die with their sessions open: the master zeroes their share
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    z.wait_workers(2, gone=workers)
    assert wait_for(lambda: zone(admin)["processing"] == 0), zone(admin)
    assert zone(admin)["connections"] == 2
    for h in held:
        h.close()
    # a reload keeps the zone and its counters; new sessions add to them
    old = z.wait_workers(2)
    z.reload()
    z.wait_workers(2, gone=old)
    assert zone(admin)["connections"] == 2
    s = echo(port, b"c")
    s.close()
    assert wait_for(lambda: zone(admin)["connections"] == 3 and zone(admin)["processing"] == 0)
    stop_clean(z)


def test_stream_upstream_peer_down_through_the_api():
    u = TcpUpstream()
    port, pport, other, admin = free_port(), free_port(), free_port(), free_port()
    z = Zonegate(CONF, wait_ports=[admin], port=port, pport=pport, other=other, admin=admin,
                 upstream=u.addr)
    st, _, body = request(admin, "PATCH", "/api/1/stream/upstreams/backend/servers/0",
                          body=b'{"down": true}')
    assert st == 200 and json.loads(body)["state"] == "down", (st, body)
    # every worker sees it: a new session finds no peer (502)
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", other))
        assert until_closed(s) == b""
        s.close()
    assert wait_for(lambda: zone(admin, "other")["sessions"]["5xx"] == 4), zone(admin, "other")
    st, _, body = request(admin, "PATCH", "/api/1/stream/upstreams/backend/servers/0",
                          body=b'{"down": false}')
    assert st == 200 and json.loads(body)["state"] == "up"
    s = echo(other, b"back")
    s.close()
    # the http name space has no upstream "backend"
    st, _, _ = request(admin, "PATCH", "/api/1/http/upstreams/backend/servers/0",
                       body=b'{"down": true}')
    assert st == 404
    stop_clean(z)
