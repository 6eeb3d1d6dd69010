# SPDX-License-Identifier: BSD-3-Clause
"""A small Linux HTTP server for preload_curl.sh (runs in the Linux
namespace): GET serves files from DIR, PUT answers the SHA-256 of the body.

  preload_httpd.py IP PORT DIR READYFILE
"""
import functools
import hashlib
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while n > 0:
            b = self.rfile.read(min(n, 65536))
            if not b:
                break
            h.update(b)
            n -= len(b)
        body = (h.hexdigest() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    ip, port, root, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    srv = http.server.ThreadingHTTPServer((ip, port), functools.partial(Handler, directory=root))
    open(ready, "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
