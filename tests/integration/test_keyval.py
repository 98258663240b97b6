"""Key-value zones (issue 16): keyval variables in limit keys and logs, state files
loaded at start, written by the master, kept across TERM + start and HUP, corrupt
files reported; the JSON API (tests/integration/test_api.py drives writes)."""
import json
import os
import signal

from zg import Zonegate, free_port, get, wait_for

CONF = """
worker_processes 2;
http {{
    keyval_zone zone=deny:64k type=ip state={dir}/deny.json;
    keyval $remote_addr $blocked zone=deny;
    keyval_zone zone=tiers:64k;
    keyval $http_x_key $tier zone=tiers;
    # a blocked client is one key; everyone else has an empty key: not limited
    limit_req_zone $blocked zone=blocked:64k rate=1r/m;
    log_format t '$remote_addr blocked=$blocked tier=$tier';
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log t;
        limit_req_status 403;
        # `return` answers before any limit: the limited location proxies
        location / {{ limit_req zone=blocked; proxy_pass http://127.0.0.1:{back}; }}
        location = /slab_stat {{ slab_stat; }}
        location = /metrics {{ metrics; }}
    }}
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def write_state(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def start(state=None, **kw):
    port = free_port()
    z = Zonegate(CONF, port=port, back=free_port(), **kw) if state is None else None
    if z is None:
        import tempfile
        d = tempfile.mkdtemp(prefix="zgtest-")
        write_state(os.path.join(d, "deny.json"), state)
        z = Zonegate(CONF, port=port, back=free_port(), dir=d, **kw)
        z.dir = d
    z.port = port
    wait_for(lambda: len(z.workers()) == 2, 5)
    from zg import wait_port
    wait_port(port, proc=z.proc)
    return z


def statuses(port, path, n):
    return [get(port, path)[0] for _ in range(n)]


def test_state_file_variable_limit_key_and_log():
    # 127.0.0.0/8 is blocked by the state file: the limit key is "1" for it
    z = start(state={"127.0.0.0/8": "1", "10.0.0.1": "x"})
    # one request a minute for the key "1": the second is refused
    assert statuses(z.port, "/", 3) == [200, 403, 403]
    log = os.path.join(z.dir, "access.log")
    assert wait_for(lambda: os.path.exists(log) and "blocked=1 tier=-" in open(log).read(), 5)
    # the zone shows in /slab_stat and /metrics
    st, h, body = get(z.port, "/slab_stat")
    assert b"* shared memory: deny\n" in body and b"* shared memory: tiers\n" in body
    st, h, body = get(z.port, "/metrics")
    text = body.decode()
    assert 'zonegate_keyval_entries{zone="deny"} 2' in text, text
    assert 'zonegate_zone_bytes{zone="deny",kind="keyval",type="total"}' in text
    assert 'zonegate_keyval_evictions_total{zone="tiers"} 0' in text
    import test_admin
    assert test_admin.parse_metrics(text)
    test_admin.check_promtool(text)


def test_state_file_empty_key_passes():
    z = start(state={"10.0.0.0/8": "1"})
    assert statuses(z.port, "/", 5) == [200] * 5


def test_corrupt_state_file_is_reported_and_zone_starts_empty():
    import tempfile
    d = tempfile.mkdtemp(prefix="zgtest-")
    path = os.path.join(d, "deny.json")
    with open(path, "w") as f:
        f.write('{"127.0.0.1": "1", "10.')  # truncated
    port = free_port()
    z = Zonegate(CONF, port=port, back=free_port(), dir=d)
    from zg import wait_port
    wait_port(port, proc=z.proc)
    log = wait_for(lambda: "is corrupt" in z.error_log() and z.error_log(), 5)
    assert log and ('state file "%s" is corrupt' % path) in log, z.error_log()
    assert statuses(port, "/", 3) == [200] * 3
