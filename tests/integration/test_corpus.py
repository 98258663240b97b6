"""The corpus: real-looking nginx configs that rate-limit (tests/integration/corpus/,
paths and ports normalised), each accepted by `nginx -t`.  `zonegate -t` must accept
each, or refuse it only for features zonegate documents it does not have: every
error line it prints must match one of REFUSALS, and none may be anything else (a
crash, a wrong syntax error, an undocumented gap)."""
import glob
import os
import re
import subprocess
import tempfile

import zg
from zg import Skip

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
NGINX = "/usr/sbin/nginx"

# (error line pattern, why zonegate refuses it)
REFUSALS = [
    (r'directive "[a-z0-9_]+" belongs to nginx\'s .+, which zonegate does not implement',
     "a directive of an nginx module zonegate does not implement (src/conf/zg_conf_nginx.c, "
     "README: Porting an nginx config)"),
    (r'parameter "[a-z0-9_=]+" of the "listen" directive belongs to nginx\'s .+, which '
     r'zonegate does not implement',
     "a listen parameter of an nginx module zonegate does not implement (ssl, http2, ...)"),
    (r'file tests \("!?-[fdex]"\) in "if" are not supported by zonegate',
     "if's file tests (-f, -d, -e, -x): zonegate serves no files (README: The config language)"),
]


def corpus_files():
    return sorted(glob.glob(os.path.join(CORPUS, "*.conf")))


def zonegate_errors(path):
    p = subprocess.run([zg.BIN, "-t", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode(errors="replace")
    errors = [x[len("zonegate: [emerg] "):] for x in out.splitlines()
              if x.startswith("zonegate: [emerg] ")]
    return p.returncode, errors, out


def test_corpus_refusals_are_documented():
    files = corpus_files()
    assert len(files) >= 10, files
    accepted, undocumented = [], []
    for path in files:
        rc, errors, out = zonegate_errors(path)
        name = os.path.basename(path)
        # -t exits 1 exactly when it printed errors, and names file:line for each
        assert (rc != 0) == bool(errors), (name, rc, out)
        if rc == 0:
            assert "test is successful" in out, out
            accepted.append(name)
        for e in errors:
            assert re.search(r" in /\S+:\d+$", e), (name, e)
            if not any(re.search(pat, e) for pat, _ in REFUSALS):
                undocumented.append((name, e))
        print("%-28s %s" % (name, "accepted" if rc == 0 else "%d refusals" % len(errors)))
    print("accepted as they are: %d of %d" % (len(accepted), len(files)))
    assert not undocumented, "\n".join("%s: %s" % u for u in undocumented)
    # the configs that use only what zonegate has are accepted
    for name in ("01-basic-api.conf", "03-allowlist-map.conf", "04-json-429.conf",
                 "06-conf-d.conf", "07-behind-lb.conf", "08-multi-zone.conf",
                 "11-dry-run.conf",
                 "12-debian-default.conf", "14-cors-api-gateway.conf"):
        assert name in accepted, (name, accepted)


def test_corpus_is_valid_for_nginx():
    """the corpus is honest: nginx itself accepts every config"""
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    d = tempfile.mkdtemp(prefix="zgcorpus-")
    os.mkdir(os.path.join(d, "logs"))
    for path in corpus_files():
        p = subprocess.run([NGINX, "-t", "-p", d + "/", "-c", path, "-g",
                            "error_log %s/error.log;" % d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        assert p.returncode == 0, (path, p.stdout.decode(errors="replace"))


def test_t_reports_every_error():
    """-t: every error of the config, each with file:line and directive, exit 1"""
    rc, out, path = zg.zonegate_t(
        "worker_processes abc;\n"
        "http {{\n"
        "    fastcgi_pass 127.0.0.1:9000;\n"
        "    server {{\n"
        "        listen 127.0.0.1:1;\n"
        "        location ~ ^(bad {{ }}\n"
        "        location / {{ proxy_pass http://127.0.0.1:2; nope; }}\n"
        "    }}\n"
        "    limit_req_zone $binary_remote_addr zone=z:1g rate=1r/s;\n"
        "}}\n")
    assert rc == 1, out
    lines = [x for x in out.splitlines() if "[emerg]" in x]
    want = [
        'invalid value "abc" in "worker_processes" directive in %s:1' % path,
        'directive "fastcgi_pass" belongs to nginx\'s fastcgi module, which zonegate does '
        'not implement in %s:3' % path,
        'pcre2_compile() failed: missing closing parenthesis in "^(bad" in %s:6' % path,
        'unknown directive "nope" in %s:7' % path,
        'invalid zone size "zone=z:1g" in "limit_req_zone" directive in %s:9' % path,
    ]
    assert lines == ["zonegate: [emerg] " + w for w in want], out
    assert "test failed" in out, out


def test_t_warns_of_conflicting_server_names():
    """as nginx: the first server with a name keeps it, -t says so and succeeds"""
    rc, out, _ = zg.zonegate_t(
        "http {{\n"
        "    server {{ listen 127.0.0.1:1; server_name a.test *.b.test; }}\n"
        "    server {{ listen 127.0.0.1:1; server_name A.test *.b.test c.test; }}\n"
        "}}\n")
    assert rc == 0, out
    warns = [x.split("] ", 1)[1].split(": ", 1)[1] for x in out.splitlines() if "[warn]" in x]
    assert warns == ['conflicting server name "a.test" on 127.0.0.1:1, ignored',
                     'conflicting server name "*.b.test" on 127.0.0.1:1, ignored'], out


NOOPS = """
events {{ use epoll; worker_connections 64; }}
http {{
    sendfile on;
    tcp_nopush on;
    server_names_hash_bucket_size 64;
    server_names_hash_max_size 1024;
    variables_hash_max_size 2048;
    variables_hash_bucket_size 128;
    types_hash_max_size 2048;
    types_hash_bucket_size 64;
    map_hash_max_size 4096;
    map_hash_bucket_size 64;
    server {{
        listen 127.0.0.1:{port};
        location / {{ sendfile off; proxy_http_version 1.1; return 200 "ok"; }}
    }}
}}
"""


def test_tuning_noops_accepted_values_checked():
    """nginx's tuning directives that mean nothing here are accepted (README lists them
    as no-ops) but their values are still checked"""
    rc, out, _ = zg.zonegate_t(NOOPS, port=zg.free_port())
    assert rc == 0 and "test is successful" in out, out
    for bad, line, word in (
            ("events { use kqueue; }\n", 1, "use"),
            ("http {\n sendfile maybe;\n}\n", 2, "sendfile"),
            ("http {\n map_hash_max_size lots;\n}\n", 2, "map_hash_max_size"),
            ("events {\n multi_accept sometimes;\n}\n", 2, "multi_accept"),
            ("http {\n client_header_buffer_size big;\n}\n", 2, "client_header_buffer_size"),
            ("http {\n server {\n location / { proxy_http_version 2; }\n}\n}\n", 3,
             "proxy_http_version")):
        rc, out, path = zg.zonegate_t(bad.replace("{", "{{").replace("}", "}}"))
        assert rc == 1, (bad, out)
        assert "%s:%d" % (path, line) in out and word in out, (bad, out)
