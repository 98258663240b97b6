"""Runs every test_* function of tests/integration/test_*.py, each bounded in time,
killing whatever it started.  Prints one line a test and 'N passed, N failed'.
Usage: run.py [-k SUBSTRING] [FILE ...]

ZG_TEST_JOBS=N (default 2) runs the files in N shards at once, each a run.py of its
own with its own files (the tests wait on servers more than they compute, and each
one uses ports the kernel picked and finds its processes by pid, never by name); a
shard's lines are printed when it ends, then the sum.  ZG_TEST_JOBS=1: one after the
other, printed as they run."""
import glob
import re
import subprocess
import tempfile
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zg  # noqa: E402

TIMEOUT = int(os.environ.get("ZG_TEST_TIMEOUT", "120"))


class Timeout(Exception):
    pass


def on_alarm(sig, frame):
    raise Timeout("test exceeded %ds" % TIMEOUT)


def killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup():
    """Stops what the test started, each process with its group (so the workers of a
    master that died go too): a graceful TERM first, then KILL.  Returns the
    processes that were still there after that (a test that leaks is a failure)."""
    stops = list(zg.STOPS)
    del zg.STOPS[:]
    for stop in stops:  # client threads of a test that failed half-way
        try:
            stop()
        except Exception:  # noqa: B902
            pass
    procs, pgids = list(zg.PROCS), set()
    del zg.PROCS[:]
    for p in procs:
        pgids.add(p.pid)  # spawn() makes each a group leader
        if p.poll() is None:
            killpg(p.pid, signal.SIGTERM)
    end = time.time() + 10
    for p in procs:
        try:
            p.wait(max(0.1, end - time.time()))
        except Exception:  # noqa: B902
            pass
    for g in pgids:
        killpg(g, signal.SIGKILL)
    for p in procs:
        try:
            p.wait(5)
        except Exception:  # noqa: B902
            pass
    left = zg.wait_for(lambda: not zg.group_members(pgids), 5) or zg.group_members(pgids)
    return [] if left is True else left


def sharded(files, pattern, jobs):
    """runs the files in `jobs` child run.py at once; the largest files first, each to
    the shard with the least bytes of test code so far (size stands in for time)"""
    shards = [[] for _ in range(jobs)]
    load = [0] * jobs
    for f in sorted(files, key=lambda f: -os.path.getsize(f)):
        i = load.index(min(load))
        shards[i].append(f)
        load[i] += os.path.getsize(f)
    env = dict(os.environ, ZG_TEST_JOBS="1")
    procs = []
    for files_i in shards:
        if not files_i:
            continue
        out = tempfile.TemporaryFile()
        argv = [sys.executable, os.path.abspath(__file__)]
        argv += (["-k", pattern] if pattern else []) + sorted(files_i)
        procs.append((subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env),
                      out))
    passed = failed = skipped = 0
    failures = []
    for p, out in procs:
        rc = p.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
        for line in text.splitlines():
            m = re.match(r"(\d+) passed, (\d+) failed, (\d+) skipped$", line)
            if m:
                passed += int(m.group(1))
                failed += int(m.group(2))
                skipped += int(m.group(3))
            elif line.startswith("failed: "):
                failures += line[8:].split()
            else:
                print(line)
        if rc != 0 and not re.search(r"\d+ failed", text):
            failed += 1
            failures.append("shard(exit %d)" % rc)
        sys.stdout.flush()
    if failures:
        print("failed: " + " ".join(failures))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


def main():
    args = sys.argv[1:]
    pattern = None
    if len(args) >= 2 and args[0] == "-k":
        pattern = args[1]
        args = args[2:]
    files = args or sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    if not os.path.exists(zg.BIN):
        print("missing binary %s" % zg.BIN)
        return 1
    jobs = int(os.environ.get("ZG_TEST_JOBS", "2"))
    if jobs > 1 and len(files) > 1:
        return sharded(files, pattern, jobs)
    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = skipped = 0
    failures = []
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tests = [t for t in dir(mod) if t.startswith("test_") and callable(getattr(mod, t))]
        tests.sort(key=lambda t: getattr(mod, t).__code__.co_firstlineno)
        for t in tests:
            full = "%s.%s" % (name, t)
            if pattern and pattern not in full:
                continue
            start = time.time()
            signal.alarm(TIMEOUT)
            try:
                getattr(mod, t)()
                signal.alarm(0)
                passed += 1
                print("PASS %s (%.1fs)" % (full, time.time() - start), flush=True)
            except zg.Skip as e:
                signal.alarm(0)
                skipped += 1
                print("SKIP %s: %s" % (full, e), flush=True)
            except BaseException as e:  # noqa: B902
                signal.alarm(0)
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                failures.append(full)
                print("FAIL %s (%.1fs): %s" % (full, time.time() - start, e), flush=True)
                traceback.print_exc(limit=6)
            finally:
                left = cleanup()
                if left:
                    failed += 1
                    failures.append(full + "(left processes)")
                    print("FAIL %s: processes left running after cleanup: %s"
                          % (full, left), flush=True)
    if failures:
        print("failed: " + " ".join(failures))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
