"""The config language around the limits (issue 13): variables, the rewrite module,
map, geo, add_header, real_ip, error_page."""
import json

from zg import Upstream, Zonegate, free_port, get, raw, request, zonegate_t


def start(body, upstream=None):
    port = free_port()
    conf = "worker_processes 1;\nhttp {{\n" + body + "\n}}\n"
    z = Zonegate(conf, wait_ports=[port], port=port,
                 up=upstream.addr if upstream else "")
    return z, port


def test_variables():
    u = Upstream("a")
    z, port = start("""
    server {{
        listen 127.0.0.1:{port};
        location = /v {{ return 200 "$scheme|$https|$proxy_add_x_forwarded_for|$cookie_sid|$server_addr:$server_port|$is_args$args|$zonegate_version"; }}
        location / {{
            proxy_pass http://{up};
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
        }}
    }}""", u)
    try:
        st, h, body = get(port, "/v?a=1", headers={"Cookie": "x=1; sid=abc",
                                                    "X-Forwarded-For": "10.1.1.1"})
        assert st == 200
        assert body.decode() == ("http||10.1.1.1, 127.0.0.1|abc|127.0.0.1:%d|?a=1|"
                                 % port) + body.decode().rsplit("|", 1)[1]
        st, h, body = get(port, "/echo", headers={"X-Forwarded-For": "10.1.1.1"})
        hdrs = {k.lower(): v for k, v in json.loads(body)["headers"]}
        assert hdrs["x-fwd"] == "10.1.1.1, 127.0.0.1"
        assert len(hdrs["x-request-id"]) == 32
    finally:
        z.stop()
        u.stop()


def test_unknown_variable_names_first_use():
    rc, out, path = zonegate_t("""events {{}}
http {{ server {{ listen 127.0.0.1:1;
  location / {{ return 200 "$nosuch"; }} }} }}""")
    assert rc == 1
    assert 'unknown "nosuch" variable in %s:3' % path in out, out
