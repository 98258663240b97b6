"""Process security: workers drop root to "user" (default nobody) and run inside a
seccomp allow-list ("worker_sandbox"); the master stays root; logs are reopened by the
master and handed to the workers.  The worker hooks (ZG_DEBUG_USR2) exist only in a
-DZG_DEBUG build (make asan); tests that need them skip elsewhere."""
import grp
import os
import socket
import shutil
import pwd
import signal
import subprocess
import tempfile

from zg import BIN, Skip, Zonegate, free_port, get, wait_for, zonegate_t

CONF = """
worker_processes 2;
{head}
http {{
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log;
        location / {{ return 200 "ok"; }}
    }}
}}
"""

NOBODY = pwd.getpwnam("nobody")


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root: the master drops privileges only when it is root")


def debug_build():
    try:
        with open(BIN, "rb") as f:
            return b"ZG_DEBUG_USR2" in f.read()
    except OSError:
        return False


def need_debug():
    if not debug_build():
        raise Skip("needs a -DZG_DEBUG build (make asan) for the ZG_DEBUG_USR2 hook")


def status(pid):
    """the Uid/Gid/Groups/NoNewPrivs/Seccomp lines of /proc/PID/status"""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp"):
                out[k] = v.split()
    return out


def start(head="", workers=2, env=None):
    port = free_port()
    z = Zonegate(CONF.replace("worker_processes 2", "worker_processes %d" % workers),
                 wait_ports=[port], port=port, head=head, env=env)
    z.wait_workers(workers)
    return z, port


def root_only_file():
    """a root-owned 0600 file in a directory anyone may enter: only the file's mode
    keeps a non-root writer out"""
    d = tempfile.mkdtemp(prefix="zgsec-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "secret")
    with open(path, "w") as f:
        f.write("root only\n")
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def settled(z, uid, seccomp):
    """the workers' /proc status once every worker has dropped to uid and (if seccomp
    is "2") entered its sandbox: a worker's set-up runs after the fork, so a list
    taken at once may show one still starting"""
    def ok():
        sts = {}
        for pid in z.workers():
            try:
                st = status(pid)
            except OSError:
                return None
            if st["Uid"][0] != str(uid) or st["Seccomp"] != [seccomp]:
                return None
            sts[pid] = st
        return sts or None
    sts = wait_for(ok, 10)
    assert sts, [status(p) for p in z.workers()]
    return sts


def test_workers_run_as_nobody_master_stays_root():
    need_root()
    z, port = start()
    assert get(port, "/")[0] == 200
    for pid, st in settled(z, NOBODY.pw_uid, "2").items():
        assert st["Uid"] == [str(NOBODY.pw_uid)] * 4, st
        assert st["Gid"] == [str(NOBODY.pw_gid)] * 4, st
        assert "0" not in st["Groups"], st
        assert st["NoNewPrivs"] == ["1"] and st["Seccomp"] == ["2"], st
    m = status(z.proc.pid)
    assert m["Uid"] == ["0"] * 4 and m["Seccomp"] == ["0"], m
    group = grp.getgrgid(NOBODY.pw_gid).gr_name
    assert "workers run as nobody:%s" % group in z.error_log()
    assert "sandbox on" in z.error_log()
    z.stop()


def test_user_and_group_directive():
    need_root()
    user = pwd.getpwnam("daemon")
    group = grp.getgrnam("nogroup")
    z, port = start(head="user daemon nogroup;\nworker_sandbox off;")
    assert get(port, "/")[0] == 200
    for pid, st in settled(z, user.pw_uid, "0").items():
        assert st["Uid"] == [str(user.pw_uid)] * 4, st
        assert st["Gid"] == [str(group.gr_gid)] * 4, st
        assert st["NoNewPrivs"] == ["0"] and st["Seccomp"] == ["0"], st
    assert "workers run as daemon:nogroup" in z.error_log()
    assert "sandbox off" in z.error_log()
    # HUP: the new generation drops privileges too, the respawned worker as well
    old = z.workers()
    z.reload()
    z.wait_workers(2, gone=old)
    victim = z.workers()[0]
    os.kill(victim, signal.SIGKILL)
    z.wait_workers(2, gone=[victim])
    for pid, st in settled(z, user.pw_uid, "0").items():
        assert st["Uid"] == [str(user.pw_uid)] * 4
    assert get(port, "/")[0] == 200
    z.stop()


def test_t_unknown_user_or_group():
    rc, out, path = zonegate_t("worker_processes 1;\nuser nosuchuser;\n")
    assert rc == 1, out
    assert 'unknown user "nosuchuser" in "user" directive' in out, out
    assert "%s:2" % path in out, out
    rc, out, path = zonegate_t("user nobody nosuchgroup;\n")
    assert rc == 1, out
    assert 'unknown group "nosuchgroup" in "user" directive' in out, out
    assert "%s:1" % path in out, out
    rc, out, path = zonegate_t("user nobody;\nuser nobody;\n")
    assert rc == 1 and '"user" directive is duplicate' in out and "%s:2" % path in out, out
    rc, out, path = zonegate_t("worker_sandbox maybe;\n")
    assert rc == 1 and "worker_sandbox" in out and "%s:1" % path in out, out
    rc, out, path = zonegate_t("user nobody nogroup;\nworker_sandbox off;\n")
    assert rc == 0, out


def test_reopen_hands_new_files_to_workers():
    """the logs live in a root-only (0700) directory the workers cannot enter: the
    master reopens them, gives them to the workers' user and passes the descriptors"""
    need_root()
    z, port = start()
    assert oct(os.stat(z.dir).st_mode & 0o777) == "0o700"
    acc = os.path.join(z.dir, "access.log")
    for _ in range(4):
        assert get(port, "/")[0] == 200
    assert wait_for(lambda: os.path.exists(acc) and len(open(acc).readlines()) == 4, 3)
    os.rename(acc, acc + ".1")
    os.rename(z.log, z.log + ".1")
    z.kill(signal.SIGUSR1)
    assert wait_for(lambda: os.path.exists(acc) and os.path.exists(z.log), 3)
    assert os.stat(acc).st_uid == NOBODY.pw_uid
    assert os.stat(z.log).st_uid == NOBODY.pw_uid
    # every worker gets the new descriptors: send until both have served requests
    for _ in range(20):
        assert get(port, "/")[0] == 200
    assert wait_for(lambda: len(open(acc).readlines()) == 20, 3)
    assert len(open(acc + ".1").readlines()) == 4
    assert "signal 31" not in open(z.log + ".1").read()
    z.stop()


def test_worker_cannot_write_a_root_only_file():
    """privileges alone (sandbox off): the worker's open-for-write fails with EACCES;
    the same hook run as root (user root) succeeds, so the hook does open for real"""
    need_root()
    need_debug()
    path = root_only_file()
    for head, want in (("worker_sandbox off;", "failed (13: Permission denied)"),
                       ("user root;\nworker_sandbox off;", "succeeded")):
        z, port = start(head=head, workers=1, env={"ZG_DEBUG_USR2": "write:" + path})
        pid = usr2(z)
        line = 'debug: open() "%s" for writing %s' % (path, want)
        assert wait_for(lambda: line in z.error_log(), 5), z.error_log()[-2000:]
        assert z.workers() == [pid]  # still the same worker
        assert get(port, "/")[0] == 200
        z.stop()
    assert open(path).read() == "root only\n"


def usr2(z):
    """the only worker, once it says it is ready for the SIGUSR2 hook (its handlers are
    set and its sandbox is on), gets SIGUSR2; returns its pid"""
    def ready():
        w = z.workers()  # read once per decision
        if len(w) == 1 and "debug: worker %d ready for SIGUSR2" % w[0] in z.error_log():
            return w[0]
        return None
    pid = wait_for(ready, 10)
    assert pid, z.error_log()[-2000:]
    os.kill(pid, signal.SIGUSR2)
    return pid


def wait_sigsys(z, pid):
    """the worker pid was killed by SIGSYS, logged by the master and respawned"""
    line = "worker process %d exited on signal 31" % pid
    assert wait_for(lambda: line in z.error_log(), 5), z.error_log()[-2000:]
    z.wait_workers(1, gone=[pid])


def test_sandbox_kills_a_worker_opening_a_file_for_writing():
    need_root()
    need_debug()
    path = root_only_file()
    z, port = start(workers=1, env={"ZG_DEBUG_USR2": "write:" + path})
    pid = usr2(z)
    wait_sigsys(z, pid)
    assert "debug: open()" not in z.error_log()  # it never returned
    assert get(port, "/")[0] == 200
    z.stop()


def test_sandbox_kills_a_worker_calling_execve():
    need_root()
    need_debug()
    z, port = start(workers=1, env={"ZG_DEBUG_USR2": "exec:/bin/true"})
    for _ in range(2):
        pid = usr2(z)
        wait_sigsys(z, pid)
        assert get(port, "/")[0] == 200
    assert 'debug: execve("/bin/true")' in z.error_log()
    assert "execve(\"/bin/true\") failed" not in z.error_log()
    z.stop()


def test_without_sandbox_execve_runs():
    """the control for the test above: with worker_sandbox off the same hook really
    replaces the worker by /bin/true, which exits 0 (and the master respawns it)"""
    need_root()
    need_debug()
    z, port = start(head="worker_sandbox off;", workers=1,
                    env={"ZG_DEBUG_USR2": "exec:/bin/true"})
    pid = usr2(z)
    line = "worker process %d exited with code 0" % pid
    assert wait_for(lambda: line in z.error_log(), 5), z.error_log()[-2000:]
    z.wait_workers(1, gone=[pid])
    assert "signal 31" not in z.error_log()
    assert get(port, "/")[0] == 200
    z.stop()


def test_user_ignored_when_not_root():
    """a master that is not root keeps its own user for the workers and says so"""
    need_root()
    d = tempfile.mkdtemp(prefix="zgsec-")
    os.chmod(d, 0o777)
    port = free_port()
    conf = os.path.join(d, "zonegate.conf")
    with open(conf, "w") as f:
        f.write("error_log %s/error.log info;\nuser daemon;\n" % d)
        f.write(CONF.format(head="", port=port, dir=d))
    os.chmod(conf, 0o644)
    # the checkout may sit where nobody cannot reach (e.g. under /root): run a copy
    binary = os.path.join(d, "zonegate")
    shutil.copy(BIN, binary)
    os.chmod(binary, 0o755)
    p = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: (os.setgid(NOBODY.pw_gid), os.setgroups([]),
                                             os.setuid(NOBODY.pw_uid)))
    try:
        from zg import PROCS, wait_port
        PROCS.append(p)
        wait_port(port, proc=p)
        assert get(port, "/")[0] == 200
        log = open(os.path.join(d, "error.log")).read()
        assert '"user" directive makes sense only if the master process runs with ' \
               'super-user privileges, ignored' in log, log
        assert "workers run as uid %d, sandbox on" % NOBODY.pw_uid in log, log
    finally:
        p.terminate()
        p.wait(10)


SYNC = """
worker_processes 2;
http {{
    limit_req_zone $binary_remote_addr zone=fleet:1m rate=100r/s
                   sync=redis://localhost:{redis} sync_interval=50ms;
    server {{
        listen 127.0.0.1:{port};
        location / {{ limit_req zone=fleet burst=10 nodelay; return 200 "ok"; }}
    }}
}}
"""


def test_redis_link_resolves_a_name_inside_the_sandbox():
    """the sync link looks "localhost" up (libuv's resolver thread reads /etc/hosts,
    talks netlink) and connects, all as nobody inside the sandbox"""
    need_root()
    try:
        socket.getaddrinfo("localhost", None, socket.AF_INET)
    except OSError:
        raise Skip('"localhost" does not resolve here (no /etc/hosts)')
    from test_cluster import Redis
    redis = Redis()
    port = free_port()
    z = Zonegate(SYNC, wait_ports=[port], port=port, redis=redis.port)
    assert wait_for(lambda: 'localhost:%d is up' % redis.port in z.error_log()
                    or "signal 31" in z.error_log(), 10), z.error_log()[-2000:]
    for _ in range(5):
        assert get(port, "/")[0] == 200
    assert "signal 31" not in z.error_log(), z.error_log()[-2000:]
    assert settled(z, NOBODY.pw_uid, "2")
    z.stop()
    redis.kill()


def test_asan_report_from_inside_the_sandbox():
    """ASan build: a worker's memory error is reported in full (the sandbox lets the
    report through, only the symbolizer's fork fails) and the worker exits 1, not 31"""
    need_debug()
    if not (os.environ.get("ZG_ASAN") or "asan" in BIN):
        raise Skip("needs the ASan build")
    z, port = start(workers=1, env={"ZG_DEBUG_USR2": "overflow"})
    pid = usr2(z)
    line = "worker process %d exited with code 1" % pid
    assert wait_for(lambda: line in z.error_log(), 10), z.error_log()[-2000:]
    z.wait_workers(1, gone=[pid])
    assert get(port, "/")[0] == 200
    z.stop()
    out = z.proc.stdout.read().decode(errors="replace")
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in out, out[-3000:]
    assert "SUMMARY: AddressSanitizer" in out, out[-3000:]
    assert "signal 31" not in z.error_log()


def test_failed_drop_is_fatal_and_logged():
    """a root master without CAP_SETUID (setpriv): the workers' setuid fails, each
    logs why and exits 2, and the master does not respawn them (as nginx)"""
    need_root()
    setpriv = "/usr/bin/setpriv"
    if not os.path.exists(setpriv):
        raise Skip("needs setpriv (util-linux)")
    d = tempfile.mkdtemp(prefix="zgsec-")
    port = free_port()
    conf = os.path.join(d, "zonegate.conf")
    with open(conf, "w") as f:
        f.write("error_log %s/error.log info;\n" % d)
        f.write(CONF.format(head="", port=port, dir=d))
    p = subprocess.Popen([setpriv, "--bounding-set=-setuid", "--", BIN, "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from zg import PROCS
    PROCS.append(p)
    log = os.path.join(d, "error.log")

    def text():
        try:
            return open(log).read()
        except OSError:
            return ""
    try:
        assert wait_for(lambda: text().count("cannot be respawned") == 2, 10), text()
        assert text().count("setuid(%d) failed (1: Operation not permitted)"
                            % NOBODY.pw_uid) == 2, text()
        assert p.poll() is None  # the master itself goes on
    finally:
        p.terminate()
        p.wait(10)
