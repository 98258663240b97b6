#!/usr/bin/env python3
"""bench/keyval.py — what keyval zones, variable rates and the API cost (issue 16).

  python3 bench/keyval.py ir       instructions per request on the pass path (callgrind,
                                   the method of bench/profile.py: Ir(N2) - Ir(N1)):
                                   base       bench/zonegate.conf's pass scenario
                                   mapkey     limit key = $m, a map of X-Key (any named
                                              variable's cost, for comparison)
                                   kvkey      limit key = $kv, a keyval lookup of X-Key
                                   varrate    rate=$kv_rate default=..., a keyval lookup
                                              of X-Key giving the rate
  python3 bench/keyval.py api      API write throughput: wrk PATCHes a new key per
                                   request into a keyval zone, alone and while a second
                                   wrk drives proxied requests
  python3 bench/keyval.py top      top=N on a limit_req zone filled with KEYS_TOP (1M)
                                   keys: its time, and p50/p99 of proxied requests
                                   measured by wrk without and while top=10 runs in a loop

Knobs: N1=500 N2=3000 DURATION=5 CONNS=32 KEYS_TOP=1000000 ZG_BIN=build/zonegate.
Needs bench/results/upstream (bench/run.sh builds it), wrk and valgrind.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import profile  # noqa: E402  (its render turns the workers' sandbox off for valgrind)

DURATION = int(os.environ.get("DURATION", "5"))
CONNS = int(os.environ.get("CONNS", "32"))
KEYS_TOP = int(os.environ.get("KEYS_TOP", "1000000"))

STATE = {"one": "1000000r/s"}
API_LOC = """
        location /api/ {
            api write=on;
        }
"""


def patch_render(variant, extra_http="", zone=None):
    """bench.render with the zonegate template changed for a variant"""
    orig = bench.render

    def render(template, out, vals):
        orig(template, out, vals)
        if template != "zonegate.conf":
            return
        with open(out) as f:
            text = f.read()
        d = os.path.dirname(out)
        state = os.path.join(d, "kv.json")
        with open(state, "w") as f:
            json.dump({"one": "one"} if variant == "kvkey" else STATE, f)
        kv = ("    keyval_zone zone=kv:1m state=%s;\n"
              "    keyval $http_x_key $kv zone=kv;\n" % state)
        if variant == "kvkey":
            text = text.replace("limit_req_zone $http_x_key", kv + "    limit_req_zone $kv")
        elif variant == "mapkey":
            # the same shape through map: what any named variable costs
            text = text.replace("limit_req_zone $http_x_key",
                                "    map $http_x_key $m { default $http_x_key; }\n"
                                "    limit_req_zone $m")
        elif variant == "varrate":
            text = re.sub(r"limit_req_zone \$http_x_key zone=keys:(\S+) rate=(\S+);",
                          lambda m: kv + "    limit_req_zone $http_x_key zone=keys:%s "
                          "rate=$kv default=%s;" % (m.group(1), m.group(2)), text)
        elif variant == "api":
            text = text.replace("    access_log off;", "    access_log off;\n" + kv)
            text = text.replace("        location = /metrics {", API_LOC + "        location = /metrics {")
        if zone:
            text = text.replace("zone=keys:1m", "zone=keys:%s" % zone)
        text = text.replace("http {", "http {\n" + extra_http, 1)
        with open(out, "w") as f:
            f.write(text)

    bench.render = render
    return orig


def upstreams():
    ups = [bench.free_port(), bench.free_port()]
    procs = [subprocess.Popen([bench.UPSTREAM_BIN, str(p)]) for p in ups]
    for p, u in zip(procs, ups):
        bench.wait_port(u, p)
    return ups, procs


def cmd_ir():
    ups, procs = upstreams()
    out = []
    try:
        for variant in ("base", "mapkey", "kvkey", "varrate"):
            orig = patch_render(variant)
            try:
                a, _ = profile.measure("pass", profile.N1, ups, "a")
                b, _ = profile.measure("pass", profile.N2, ups, "b")
            finally:
                bench.render = orig
            per = (b - a) / (profile.N2 - profile.N1)
            out.append("%-8s %.0f instructions per request (Ir(%d)=%d, Ir(%d)=%d)"
                       % (variant, per, profile.N2, b, profile.N1, a))
            print(out[-1], flush=True)
    finally:
        for p in procs:
            p.terminate()
    return out


WRK_PATCH = """
local n = 0
local tid = 0
function setup(thread) tid = tid + 1; thread:set("id", tid) end
request = function()
   n = n + 1
   local body = string.format('{"w%d-%d":"v"}', id or 0, n % 5000)
   return wrk.format("PATCH", "/api/1/http/keyvals/kv",
                     {["Content-Type"] = "application/json"}, body)
end
"""


def wrk_script(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write(text)
    f.close()
    return f.name


def run_wrk(port, conns, script, path="/", keys="one", duration=DURATION):
    argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "-s", script,
            "--timeout", "5s", "--latency", "http://127.0.0.1:%d%s" % (port, path)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                       env=dict(os.environ, KEYS=keys))
    return bench.parse_wrk(p.stdout + p.stderr), p.stdout


def cmd_api():
    ups, procs = upstreams()
    out = []
    orig = patch_render("api")
    try:
        px = bench.Proxy("zonegate", 2, "pass", ups)
    finally:
        bench.render = orig
    try:
        script = wrk_script(WRK_PATCH)
        r, raw = run_wrk(px.port, 4, script)
        out.append("API PATCH alone, 2 workers, 4 connections: %s req/s, p50 %s ms, p99 %s ms, "
                   "non-2xx %s" % (bench.fmt(r.get("rps")), bench.fmt(r.get("p50_ms")),
                                   bench.fmt(r.get("p99_ms")), r.get("non2xx", 0)))
        print(out[-1], flush=True)
        res = {}

        def load():
            res["proxy"] = run_wrk(px.port, CONNS, os.path.join(bench.HERE, "keys.lua"))[0]

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.5)
        r, raw = run_wrk(px.port, 4, script, duration=DURATION - 1)
        t.join()
        pr = res["proxy"]
        out.append("API PATCH under load (wrk -c%d on the pass path at the same time): %s "
                   "req/s, p99 %s ms; proxied meanwhile %s req/s, p99 %s ms"
                   % (CONNS, bench.fmt(r.get("rps")), bench.fmt(r.get("p99_ms")),
                      bench.fmt(pr.get("rps")), bench.fmt(pr.get("p99_ms"))))
        print(out[-1], flush=True)
    finally:
        px.stop()
        for p in procs:
            p.terminate()
    return out


def cmd_top():
    ups, procs = upstreams()
    out = []
    # 1M keys of ~14 bytes: 128-byte slots, 128 MB; the zone is sized with room
    orig = patch_render("api", zone="192m")
    try:
        px = bench.Proxy("zonegate", 2, "pass", ups)
    finally:
        bench.render = orig
    api = "http://127.0.0.1:%d/api/1/http/limit_reqs/keys" % px.port
    try:
        t0 = time.time()
        filled = 0
        while filled < KEYS_TOP:
            run_wrk(px.port, CONNS, os.path.join(bench.HERE, "keys.lua"), keys="many",
                    duration=10)
            filled = json.load(urllib.request.urlopen(api))["entries"]
            print("filling: %d keys after %.0f s" % (filled, time.time() - t0), flush=True)
        out.append("zone filled with %d keys in %.0f s" % (filled, time.time() - t0))

        def top_once():
            t = time.time()
            body = urllib.request.urlopen(api + "/keys?top=10").read()
            return time.time() - t, len(json.loads(body))

        times = [top_once()[0] for _ in range(5)]
        out.append("top=10 over %d keys, alone: %s s (5 calls: min %.3f, max %.3f)"
                   % (filled, "%.3f" % sorted(times)[2], min(times), max(times)))
        print(out[-1], flush=True)

        base, _ = run_wrk(px.port, CONNS, os.path.join(bench.HERE, "keys.lua"))
        stop = threading.Event()
        during = []

        def loop():
            while not stop.is_set():
                during.append(top_once()[0])

        t = threading.Thread(target=loop)
        t.start()
        busy, _ = run_wrk(px.port, CONNS, os.path.join(bench.HERE, "keys.lua"))
        stop.set()
        t.join()
        out.append("proxied pass path, wrk -c%d %ds: without top p50 %s ms p99 %s ms %s req/s; "
                   "with top=10 in a loop (%d calls, median %.3f s) p50 %s ms p99 %s ms %s req/s"
                   % (CONNS, DURATION, bench.fmt(base.get("p50_ms")), bench.fmt(base.get("p99_ms")),
                      bench.fmt(base.get("rps")), len(during),
                      sorted(during)[len(during) // 2] if during else 0,
                      bench.fmt(busy.get("p50_ms")), bench.fmt(busy.get("p99_ms")),
                      bench.fmt(busy.get("rps"))))
        print(out[-1], flush=True)
    finally:
        px.stop()
        for p in procs:
            p.terminate()
    return out


def main():
    cmds = sys.argv[1:] or ["ir", "api", "top"]
    load = os.getloadavg()
    lines = ["load average before: %.2f %.2f %.2f, %d CPUs" % (load + (os.cpu_count(),))]
    print(lines[0], flush=True)
    for c in cmds:
        lines += {"ir": cmd_ir, "api": cmd_api, "top": cmd_top}[c]()
    os.makedirs(bench.RES, exist_ok=True)
    with open(os.path.join(bench.RES, "keyval.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
