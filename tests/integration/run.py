"""Runs every test_* function of tests/integration/test_*.py, each bounded in time,
killing whatever it started.  Prints one line a test and 'N passed, N failed'.
Usage: run.py [-k SUBSTRING] [FILE ...]"""
import glob
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


def cleanup():
    for p in zg.PROCS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass
    del zg.PROCS[:]


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
                cleanup()
    if failures:
        print("failed: " + " ".join(failures))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
