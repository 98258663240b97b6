"""ssl_session_ticket_rotate (issue 18, beyond nginx): the ticket keys live in a zone
the master made; the master makes a new encryption key every period and keeps the
previous ones for decryption, so a ticket issued before a rotation still resumes after
it and after a HUP; one ZG_SSL_TICKET_KEYS - 1 rotations old no longer does."""
import ssl

from test_tls import CACHE_CONF, crt, first_session, key, metric, resumes
from zg import Zonegate, free_port, wait_for, zonegate_t

ROTATIONS = "zonegate_ssl_ticket_key_rotations_total"


def rotations(port):
    return metric(port, ROTATIONS)


def test_tls_ticket_keys_rotate_and_old_tickets_resume():
    port = free_port()
    conf = CACHE_CONF.replace("ssl_session_tickets {tickets};",
                              "ssl_session_tickets on; ssl_session_ticket_rotate {rotate};")
    z = Zonegate(conf, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
                 rotate="1s")
    z.wait_workers(4)
    before = [first_session(port, v) for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
    start = rotations(port)  # read after the tickets were issued
    assert start is not None
    assert wait_for(lambda: rotations(port) >= start + 1, 10)
    # after a rotation: the previous key still decrypts (TLS 1.3 tickets are used once:
    # a fresh one per check)
    assert resumes(port, *before[0])
    assert resumes(port, *before[1])
    before = [first_session(port, v) for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
    n = rotations(port)
    old = z.workers()
    z.reload()
    z.wait_workers(4, gone=old)
    # the keys and the count are kept over the reload
    assert rotations(port) >= n
    assert resumes(port, *before[0])
    assert resumes(port, *before[1])
    # 4 keys are kept: after 4 more rotations the oldest ticket's key is gone
    stale = first_session(port, ssl.TLSVersion.TLSv1_2)
    n = rotations(port)
    assert wait_for(lambda: rotations(port) >= n + 4, 15)
    assert not resumes(port, *stale)
    z.stop()


def test_tls_ticket_rotate_without_it_never_rotates_and_bad_values():
    port = free_port()
    z = Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
                 tickets="on")
    assert rotations(port) == 0
    z.stop()
    conf = CACHE_CONF.replace("ssl_session_tickets {tickets};",
                              "ssl_session_ticket_rotate {rotate};")
    # accepted, with a warning, where it cannot act
    rc, out, path = zonegate_t(conf.replace("ssl_session_ticket_rotate {rotate};",
                                            "ssl_session_ticket_rotate 1h; "
                                            "ssl_session_tickets off;"),
                               port=1, crt=crt(), key=key(), cache="off")
    assert rc == 0 and '"ssl_session_ticket_rotate" has no effect with "ssl_session_tickets ' \
        'off" in %s:9' % path in out, out
    for bad in ("500ms", "abc"):
        rc, out, path = zonegate_t(conf, port=1, crt=crt(), key=key(), cache="off", rotate=bad)
        assert rc == 1 and '"ssl_session_ticket_rotate"' in out and "%s:9" % path in out, out
