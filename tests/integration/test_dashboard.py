"""The dashboard (issue 16) in a real browser: headless Chromium loads /dashboard from a
zonegate with 2 workers under traffic, runs its script against the API, and the test
reads the rendered DOM: the throttled key is listed with a "forgive" button when the
API is writable, without one when it is not, and gone once forgiven; and, driven
through the DevTools protocol, a click on "forgive" forgives the key.  Writes
docs/dashboard.png (the README's screenshot) when ZG_DASHBOARD_SHOT is set."""
import json
import os
import re
import select
import signal
import shutil
import subprocess
import tempfile
import threading
import time

from zg import ROOT, SLOW, Skip, Upstream, Zonegate, free_port, request, wait_for, wait_port

CONF = """
worker_processes 2;
http {{
    limit_req_zone $binary_remote_addr zone=perip:64k rate=1r/m;
    limit_req_zone $http_x_key zone=bykey:64k rate=2r/s;
    limit_conn_zone $binary_remote_addr zone=conns:64k;
    keyval_zone zone=deny:64k type=ip;
    upstream app {{ zone app 64k; server {up1}; server {up2} weight=2; }}
    server {{
        listen 127.0.0.1:{port};
        limit_req_status 429;
        location /limited {{ limit_req zone=perip burst=1 nodelay; limit_conn conns 10; proxy_pass http://app; }}
        location / {{ limit_req zone=bykey burst=5 nodelay; proxy_pass http://app; }}
        location /api/ {{ api write=on; }}
        location /ro/ {{ api; }}
        location = /dashboard {{ dashboard; }}
        location = /ro-dashboard {{ dashboard api=/ro/; }}
    }}
}}
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("no chromium (Debian package chromium)")


def browser(url, *extra):
    """runs headless Chromium on url for a few seconds of (virtual) page time"""
    profile = tempfile.mkdtemp(prefix="zgchrome-")
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + profile,
            "--virtual-time-budget=%d" % int(3000 * SLOW), *extra, url]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60 * SLOW)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return p.stdout.decode(errors="replace")


class Page:
    """A page in headless Chromium driven through the DevTools protocol over
    --remote-debugging-pipe (fd 3: commands in, fd 4: answers out, NUL-separated
    JSON): evaluate scripts in the page, as a user's clicks would run."""

    def __init__(self, url):
        self.profile = tempfile.mkdtemp(prefix="zgchrome-")
        r1, self.w = os.pipe()
        self.r, w2 = os.pipe()

        def fds():
            os.dup2(r1, 3)
            os.dup2(w2, 4)

        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(r1)
        os.close(w2)
        self.buf, self.id = b"", 0
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def call(self, method, session=None, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        end = time.time() + 30 * SLOW
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                d = json.loads(raw)
                if d.get("id") == self.id:
                    assert "error" not in d, d
                    return d["result"]
            left = end - time.time()
            assert left > 0, "no answer from chromium to " + method
            if select.select([self.r], [], [], left)[0]:
                data = os.read(self.r, 65536)
                assert data, "chromium went away"
                self.buf += data

    def eval(self, expr):
        res = self.call("Runtime.evaluate", session=self.session, expression=expr,
                        returnByValue=True)
        return res["result"].get("value")

    def close(self):
        # asked to close, chromium stops and reaps its helpers (renderer, GPU); if it
        # does not, they share its process group: stop them all
        try:
            self.call("Browser.close")
            self.proc.wait(10 * SLOW)
        except Exception:  # noqa: B902
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self.w)
        os.close(self.r)
        shutil.rmtree(self.profile, ignore_errors=True)


def key_rows(dom):
    return re.findall(r'<tr class="key" data-zone="([^"]*)" data-key="([^"]*)">', dom)


class Traffic(threading.Thread):
    """requests on / until stopped: one hot key (throttled) and a few others"""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.statuses = port, threading.Event(), []

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = "client-hot" if i % 2 == 0 else "client-%d" % (i % 7)
            try:
                self.statuses.append(request(self.port, "GET", "/", headers={"X-Key": key})[0])
            except OSError:
                pass
            self.stop.wait(0.02)
            i += 1


def start():
    up1, up2 = Upstream("one"), Upstream("two")
    port = free_port()
    z = Zonegate(CONF, port=port, up1=up1.addr, up2=up2.addr)
    wait_port(port, proc=z.proc)
    z.wait_workers(2)
    return z, port


def test_dashboard_shows_throttled_key_and_forgets_it_when_forgiven():
    chromium()
    z, port = start()
    st, h, body = request(port, "GET", "/dashboard")
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    assert b'data-api="/api/1/"' in body
    # no external assets: nothing is loaded from another origin
    assert not re.search(rb'(src|href)="(https?:)?//', body), body[:200]
    # traffic: 127.0.0.1 goes over its burst on /limited; others pass on /
    statuses = [request(port, "GET", "/limited")[0] for _ in range(5)]
    assert sorted(statuses) == [200, 200, 429, 429, 429], statuses
    traffic = Traffic(port)
    traffic.start()
    try:
        check_pages(port)
    finally:
        traffic.stop.set()
        traffic.join()
    assert 200 in traffic.statuses and 429 in traffic.statuses


def check_pages(port):
    dom = browser("http://127.0.0.1:%d/dashboard" % port, "--dump-dom")
    assert ("perip", "127.0.0.1") in key_rows(dom), dom[-3000:]
    assert 'class="forgive" data-zone="perip" data-key="127.0.0.1"' in dom
    assert re.search(r'<span id="status">updated [^<]* writable</span>', dom), dom[-3000:]
    # zones, counters and peers are rendered
    for text in ("perip", "bykey", "conns", "deny", "app"):
        assert ">%s<" % text in dom, text
    assert dom.count('<tr class="peer"><td>app</td>') == 2, dom

    if os.environ.get("ZG_DASHBOARD_SHOT"):
        shot = os.path.join(ROOT, "docs", "dashboard.png")
        browser("http://127.0.0.1:%d/dashboard" % port, "--screenshot=" + shot,
                "--window-size=1280,860", "--hide-scrollbars")
        assert os.path.getsize(shot) > 1000

    # read-only API: the key shows, without a button
    dom = browser("http://127.0.0.1:%d/ro-dashboard" % port, "--dump-dom")
    assert ("perip", "127.0.0.1") in key_rows(dom), dom[-3000:]
    assert '<button class="forgive" data-zone="perip"' not in dom
    assert re.search(r'<span id="status">updated [^<]* read-only</span>', dom), dom[-3000:]

    # forgiven: gone from the page
    assert request(port, "DELETE", "/api/1/http/limit_reqs/perip/keys/127.0.0.1")[0] == 204
    dom = browser("http://127.0.0.1:%d/dashboard" % port, "--dump-dom")
    assert ("perip", "127.0.0.1") not in key_rows(dom), dom[-3000:]
    assert request(port, "GET", "/limited")[0] == 200


def test_forgive_button_in_the_browser():
    chromium()
    z, port = start()
    statuses = [request(port, "GET", "/limited")[0] for _ in range(4)]
    assert sorted(statuses) == [200, 200, 429, 429], statuses
    page = Page("http://127.0.0.1:%d/dashboard" % port)
    try:
        row = 'tr.key[data-zone="perip"][data-key="127.0.0.1"]'
        assert wait_for(lambda: page.eval("!!document.querySelector('%s')" % row), 10)
        # the user clicks "forgive": the page asks the API, refreshes, the row goes
        page.eval("document.querySelector('%s button.forgive').click()" % row)
        assert wait_for(lambda: page.eval("!document.querySelector('%s')" % row), 10)
    finally:
        page.close()
    # forgiven for real: the next request passes at once
    assert request(port, "GET", "/limited")[0] == 200
