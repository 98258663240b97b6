"""PROXY protocol v1 and v2 on stream servers: accepted on `listen ... proxy_protocol`
($proxy_protocol_addr, also as a limit key), sent with `proxy_protocol on`, malformed
headers closed and logged (issue 17).  A recording upstream shows the exact bytes."""
import binascii
import os
import socket
import struct
import tempfile

from test_stream import stop_clean, TcpUpstream, until_closed
from zg import SLOW, Zonegate, free_port, wait_for

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst, sport, dport, cmd=0x21, tlv=b""):
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    body += struct.pack("!HH", sport, dport) + tlv
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


CONF = """
worker_processes 2;
stream {{
    log_format pp '$remote_addr $proxy_protocol_addr $status';
    access_log {dir}/stream.log pp;
    limit_conn_zone $proxy_protocol_addr zone=byclient:1m;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        proxy_protocol_timeout 5s;
        proxy_pass {u};
        proxy_half_close on;
        {extra}
    }}
    server {{
        listen 127.0.0.1:{send1};
        proxy_pass {u};
        proxy_protocol on;
        proxy_half_close on;
    }}
    server {{
        listen 127.0.0.1:{send2};
        proxy_pass {u};
        proxy_protocol v2;
        proxy_half_close on;
    }}
}}
"""


def start(extra=""):
    port, send1, send2 = free_port(), free_port(), free_port()
    d = tempfile.mkdtemp(prefix="zgrec-")
    rec = os.path.join(d, "rec")
    u = TcpUpstream("record", rec)
    z = Zonegate(CONF, port=port, send1=send1, send2=send2, u=u.addr, extra=extra)
    wait_for(lambda: "started" in z.error_log())
    return z, u, rec, port, send1, send2


def recorded(rec, n):
    def get():
        try:
            with open(rec) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines if len(lines) >= n else None
    got = wait_for(get)
    assert got, "the upstream recorded fewer than %d connections" % n
    return [binascii.unhexlify(x) for x in got]


def log_lines(z, n):
    path = os.path.join(z.dir, "stream.log")

    def get():
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines if len(lines) >= n else None
    return wait_for(get) or []


def exchange(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = until_closed(s)
    s.close()
    return got


def test_pp_v1_and_v2_accepted_and_stripped():
    z, u, rec, port, _, _ = start()
    # header and data in one packet: the data after the header is sent on
    assert exchange(port, b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nhello") == b"hellobye 5"
    assert exchange(port, v2("198.51.100.9", "127.0.0.1", 6000, 80) + b"world") \
        == b"worldbye 5"
    assert exchange(port, v2("2001:db8::5", "::1", 6000, 80, tlv=b"\x04\x00\x01x") + b"six") \
        == b"sixbye 3"
    assert exchange(port, b"PROXY UNKNOWN\r\nunk") == b"unkbye 3"
    seen = recorded(rec, 4)
    assert sorted(seen) == sorted([b"hello", b"world", b"six", b"unk"]), seen
    lines = log_lines(z, 4)
    assert sorted(lines) == sorted(["127.0.0.1 192.0.2.7 200", "127.0.0.1 198.51.100.9 200",
                                    "127.0.0.1 2001:db8::5 200", "127.0.0.1 - 200"]), lines
    stop_clean(z)


def test_pp_header_split_over_packets():
    z, u, rec, port, _, _ = start()
    s = socket.create_connection(("127.0.0.1", port))
    hdr = v2("203.0.113.1", "127.0.0.1", 1234, 80)
    s.sendall(hdr[:5])
    s.sendall(hdr[5:20])
    s.sendall(hdr[20:] + b"rest")
    s.shutdown(socket.SHUT_WR)
    assert until_closed(s) == b"restbye 4"
    assert recorded(rec, 1) == [b"rest"]
    stop_clean(z)


def test_pp_malformed_closed_logged_never_upstream():
    z, u, rec, port, _, _ = start()
    bad = [b"GET / HTTP/1.1\r\n\r\n",
           b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\nx",
           b"PROXY TCP4 1.2.3.x 5.6.7.8 1 80\r\nx",
           b"PROXY TCP4 1.2.3.4  5.6.7.8 1 80\r\nx",
           b"PROXY UDP4 1.2.3.4 5.6.7.8 1 80\r\nx",
           b"PROXY " + b"A" * 120 + b"\r\n",
           SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,        # version 3
           SIG + b"\x21\x11\x00\x04" + b"\x00" * 4]         # too short for TCP4
    for b in bad:
        assert exchange(port, b) == b"", b
    log = z.error_log()
    assert log.count("while reading PROXY protocol") == len(bad), log
    assert 'broken header: "GET / HTTP/1.1\\x0D\\x0A\\x0D\\x0A"' in log, log
    # a good one after them: the upstream saw only that connection
    assert exchange(port, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\nok") == b"okbye 2"
    assert recorded(rec, 1) == [b"ok"]
    lines = log_lines(z, len(bad) + 1)
    assert sorted(x.split(" ")[2] for x in lines) == ["200"] + ["400"] * len(bad), lines
    stop_clean(z)


def test_pp_sent_v1_and_v2():
    z, u, rec, port, send1, send2 = start()
    s = socket.create_connection(("127.0.0.1", send1))
    cport = s.getsockname()[1]
    s.sendall(b"one")
    s.shutdown(socket.SHUT_WR)
    hdr = b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (cport, send1)
    # the echo upstream sends back what it got: the header zonegate wrote, then the data
    assert until_closed(s) == hdr + b"onebye %d" % (len(hdr) + 3)
    s.close()
    assert recorded(rec, 1) == [hdr + b"one"]
    s = socket.create_connection(("127.0.0.1", send2))
    cport2 = s.getsockname()[1]
    s.sendall(b"two")
    s.shutdown(socket.SHUT_WR)
    assert until_closed(s) is not None
    s.close()
    seen = recorded(rec, 2)
    assert seen[1] == v2("127.0.0.1", "127.0.0.1", cport2, send2) + b"two", seen[1]
    stop_clean(z)


def test_pp_addr_as_limit_key():
    z, u, rec, port, _, _ = start("limit_conn byclient 1;")

    def open_as(addr):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10 * SLOW)
        s.sendall(b"PROXY TCP4 %s 127.0.0.1 1000 80\r\nx" % addr.encode())
        try:
            if s.recv(1) == b"x":
                return s
        except OSError:
            pass
        s.close()
        return None
    a = open_as("192.0.2.1")
    assert a
    assert open_as("192.0.2.1") is None   # the same client behind the balancer
    b = open_as("192.0.2.2")              # another one: its own count
    assert b
    assert 'limiting connections by zone "byclient", client: 127.0.0.1' in z.error_log()
    a.close()
    b.close()
    stop_clean(z)


def test_pp_timeout():
    z, u, rec, port, _, _ = start()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PROXY TCP4 ")  # never finished
    assert until_closed(s, timeout=20) == b""
    assert "client timed out while reading PROXY protocol" in z.error_log()
    stop_clean(z)


def test_pp_set_real_ip_from():
    rec = os.path.join(tempfile.mkdtemp(prefix="zgrec-"), "rec")
    u = TcpUpstream("record", rec)
    trusted, untrusted = free_port(), free_port()
    z = Zonegate("""
worker_processes 1;
stream {{
    log_format pp '$server_port $remote_addr:$remote_port $proxy_protocol_addr';
    access_log {dir}/stream.log pp;
    limit_conn_zone $binary_remote_addr zone=real:1m;
    server {{
        listen 127.0.0.1:{trusted} proxy_protocol;
        set_real_ip_from 127.0.0.0/8;
        limit_conn real 1;
        proxy_pass {u};
        proxy_protocol on;
    }}
    server {{
        listen 127.0.0.1:{untrusted} proxy_protocol;
        set_real_ip_from 10.0.0.0/8;
        proxy_pass {u};
        proxy_half_close on;
    }}
}}
""", trusted=trusted, untrusted=untrusted, u=u.addr)
    wait_for(lambda: "started" in z.error_log())
    s = socket.create_connection(("127.0.0.1", trusted))
    s.settimeout(10 * SLOW)
    s.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 4444 80\r\nx")
    assert s.recv(100)  # the echo of what the upstream got
    # the client is 192.0.2.44 now: a second connection of it is over the limit,
    # whatever its TCP address
    t = socket.create_connection(("127.0.0.1", trusted))
    t.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 4445 80\r\ny")
    assert until_closed(t) == b""
    s.close()
    assert exchange(untrusted, b"PROXY TCP4 192.0.2.55 127.0.0.1 5555 80\r\nz") == b"zbye 1"
    lines = log_lines(z, 3)
    assert "%d 192.0.2.44:4444 192.0.2.44" % trusted in lines, lines
    assert "%d 192.0.2.44:4445 192.0.2.44" % trusted in lines, lines
    assert any(x.startswith("%d 127.0.0.1:" % untrusted) and x.endswith(" 192.0.2.55")
               for x in lines), lines
    # what went to the upstream names the real client, as nginx's realip makes it
    seen = recorded(rec, 2)
    assert any(x.startswith(b"PROXY TCP4 192.0.2.44 127.0.0.1 4444 %d\r\nx" % trusted)
               for x in seen), seen
    stop_clean(z)
