"""An external scanner against the default TLS configuration (issue 18): Debian's
testssl.sh, offline and short (protocols, cipher categories, a subset of the
vulnerability checks; no rating lookups), flags no weak protocol or cipher."""
import json
import os
import shutil
import subprocess

from test_tls import crt, key
from zg import SLOW, Skip, Zonegate, free_port

CONF = """
worker_processes 1;
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ return 200 "ok"; }}
    }}
}}
"""

# protocols, the standard cipher categories (NULL, aNULL, EXPORT, LOW, 3DES, ...) and
# the checks that flag a weak protocol or cipher: RC4, SWEET32, POODLE, FREAK (--fast:
# their quick variants).  About 10 s on an idle machine; its own bash and openssl
# forks make it slower on a busy one.
FLAGS = ["-p", "-s", "-4", "-W", "-O", "-F", "--fast"]
BAD = ("MEDIUM", "HIGH", "CRITICAL")


def testssl():
    for name in ("testssl", "testssl.sh"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("testssl.sh is not installed (scripts/deps.sh test)")


def test_tls_scan_default_config_has_no_weak_protocol_or_cipher():
    tool = testssl()
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, crt=crt(), key=key())
    out = os.path.join(z.dir, "scan.json")
    p = subprocess.run([tool, "--quiet", "--color", "0", "--warnings", "batch",
                        "--nodns", "none", "--sneaky", "--jsonfile", out] + FLAGS +
                       ["127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180 * SLOW)
    text = p.stdout.decode(errors="replace")
    with open(out) as f:
        findings = json.load(f)
    z.stop()
    ids = {f["id"]: f for f in findings}
    # it scanned: the protocols were tested
    assert "TLS1_2" in ids and "TLS1_3" in ids, text[-3000:]
    assert "offered" in ids["TLS1_2"]["finding"] and "offered" in ids["TLS1_3"]["finding"]
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert ids[proto]["finding"].startswith("not offered"), ids[proto]
    flagged = [f for f in findings if f.get("severity") in BAD]
    assert flagged == [], flagged
