"""A small TCP upstream for the stream tests.
Usage: tcp_upstream.py PORT MODE [FILE]
  echo    echoes every byte; on the client's EOF sends "bye <n>" (n = bytes it got)
          and closes: a client that receives "bye" saw its half-close go through
  record  as echo, and appends everything each connection sent first (up to 4 KB,
          e.g. a PROXY protocol header) to FILE, one hex line per connection
  name    sends FILE (here a name) and closes: which peer a connection reached
  flood   sends FILE (here a number) bytes of a fixed pattern at once, then closes
Prints "ready" once listening."""
import binascii
import socket
import sys
import threading


def serve(c, mode, path):
    if mode == "flood":
        try:
            left = int(path)
            block = bytes(range(256)) * 256
            while left > 0:
                c.sendall(block[:left])
                left -= min(left, len(block))
        except OSError:
            pass
        finally:
            c.close()
        return
    if mode == "name":
        try:
            c.sendall(path.encode())
        finally:
            c.close()
        return
    n = 0
    first = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            if mode == "record" and len(first) < 4096:
                first += b[:4096 - len(first)]
            n += len(b)
            c.sendall(b)
        c.sendall(b"bye %d" % n)
    except OSError:
        pass
    finally:
        if mode == "record":
            with open(path, "a") as f:
                f.write(binascii.hexlify(first).decode() + "\n")
        c.close()


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    path = sys.argv[3] if len(sys.argv) > 3 else None
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode, path), daemon=True).start()


if __name__ == "__main__":
    main()
