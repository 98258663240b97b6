"""Cluster sync with an authenticated Redis (issue 20): a password in the URL, an ACL
user with its password in a file read by the master, and a wrong password that is
logged once while every request is still answered from local limits."""
import os

import sync_util
from sync_util import Redis, metric, run_clients
from zg import free_port, wait_for, zonegate_t


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def synced(port, redis):
    """the host is up with Redis and its keys are there"""
    assert wait_for(lambda: metric(port, "zonegate_sync_up") == 1, 10), \
        metric(port, "zonegate_sync_errors_total")
    logs = run_clients([port], 20, 0.5)
    assert all(st == 200 for _, st, _ in logs[0])
    assert wait_for(lambda: redis.keys("zg:{fleet}:*"), 5)
    assert metric(port, "zonegate_sync_errors_total") == 0


def test_sync_auth_password_in_url():
    r = Redis(args=["--requirepass", "s3cret word"], password="s3cret word")
    (z, port), = sync_util.hosts(1, '"sync=redis://:s3cret word@127.0.0.1:%d"' % r.port, 600, 10)
    synced(port, r)
    log = z.error_log()
    assert "s3cret" not in log, log  # never logged
    assert "redis://:***@127.0.0.1" in log, log
    z.stop()


def test_sync_auth_acl_user_and_password_file():
    d = sync_util.tempfile.mkdtemp(prefix="zgpw-")
    pw = write(os.path.join(d, "redis.pw"), "fleet-pw\n")
    # an ACL user that may run the script on zonegate's keys only; the default user
    # is off, so a connection without AUTH as zg could do nothing
    r = Redis(args=["--user", "default", "off",
                    "--user", "zg", "on", ">fleet-pw", "~zg:*",
                    "+evalsha", "+eval", "+script|load", "+hmget", "+hset", "+pexpire",
                    "+time"],
              user="zg", password="fleet-pw")
    os.chmod(pw, 0o600)  # read by the master (root) before the workers drop privileges
    (z, port), = sync_util.hosts(
        1, "sync=redis://zg@127.0.0.1:%d sync_password_file=%s" % (r.port, pw), 600, 10)
    synced(port, r)
    assert "fleet-pw" not in z.error_log()
    z.stop()


def test_sync_auth_wrong_password_logs_once_and_fails_open():
    rate, burst = 5, 2
    r = Redis(args=["--requirepass", "right"], password="right")
    (z, port), = sync_util.hosts(
        1, "sync=redis://:wrong@127.0.0.1:%d sync_interval=20ms" % r.port, rate, burst)
    workers = z.wait_workers(2)
    # several reconnects with backoff, each refused
    assert wait_for(lambda: (metric(port, "zonegate_sync_errors_total") or 0) >= 4, 15)
    assert metric(port, "zonegate_sync_up") == 0
    # fail-open: the host still limits on its own, every request is answered
    logs = run_clients([port], 20, 1.0)
    sts = [st for _, st, _ in logs[0]]
    assert set(sts) <= {200, 429} and 200 in sts and 429 in sts, sts
    log = z.error_log()
    lines = [l for l in log.splitlines() if "is down" in l]
    assert len(lines) == 1, log
    assert "AUTH refused" in lines[0] and "WRONGPASS" in lines[0], lines[0]
    assert "wrong" not in lines[0].replace("WRONGPASS", ""), lines[0]
    assert not r.keys()
    # no crash loop: the same workers, the master alive
    assert z.workers() == workers and z.proc.poll() is None, (workers, z.workers())
    z.stop()


def test_sync_auth_config_errors():
    d = sync_util.tempfile.mkdtemp(prefix="zgpw-")
    pw = write(os.path.join(d, "pw"), "x\n")
    empty = write(os.path.join(d, "empty"), "\n")
    base = ("http {{ limit_req_zone $binary_remote_addr zone=z:1m rate=1r/s\n %s;\n"
            " server {{ listen 127.0.0.1:%d; location / {{ limit_req zone=z; return 200; }} }} }}\n")
    cases = [
        ("sync=redis://127.0.0.1:6379 sync_password_file=%s/none" % d, "cannot read"),
        ("sync=redis://127.0.0.1:6379 sync_password_file=%s" % empty, "one line"),
        ("sync=redis://:a@127.0.0.1:6379 sync_password_file=%s" % pw, "given twice"),
        ("sync_password_file=%s" % pw, "without \"sync\""),
        ("sync=redis://user@127.0.0.1:6379", "no password"),
        ("sync=redis://:@127.0.0.1:6379", "empty password"),
        ("sync=redis-sentinel://127.0.0.1:26379", "MASTERNAME"),
        ("sync=redis-sentinel://127.0.0.1:26379,nosuch.invalid:1/m", "host not found"),
    ]
    for bad, why in cases:
        rc, out, path = zonegate_t(base % (bad, free_port()))
        assert rc != 0, (bad, out)
        assert "%s:1" % path in out and "limit_req_zone" in out and why in out, (bad, out)
    for good in ("sync=redis://u:p@127.0.0.1:6379/3",
                 "sync=redis://127.0.0.1:6379 sync_password_file=%s" % pw,
                 "sync=redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"):
        rc, out, _ = zonegate_t(base % (good, free_port()))
        assert rc == 0, (good, out)
