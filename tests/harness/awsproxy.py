"""A fault-injecting HTTP proxy between the AWS SDK and the AWS emulator, for tests.

Usage: awsproxy.py UPSTREAM_URL FAULT_RATE SEED

Listens on a free 127.0.0.1 port, prints that port on the first line of standard output, and
forwards every request to UPSTREAM_URL. A share FAULT_RATE of the requests is answered instead
with a throttling error or an HTTP 503, in the error format of the request's protocol (EC2 and
other query protocols get XML, JSON protocols get JSON, Smithy RPC v2 CBOR gets CBOR); those requests never reach the
emulator, exactly as a throttled request never reaches an AWS service. Counts of forwarded,
answered and refused requests are served at GET /__proxy/stats.
"""

import http.client
import json
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

UPSTREAM = urlparse(sys.argv[1])
RATE = float(sys.argv[2])
RNG = random.Random(int(sys.argv[3]))
LOCK = threading.Lock()
STATS = {"forwarded": 0, "answered": 0, "throttled": 0, "unavailable": 0}

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def query_error(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    ).encode()


def cbor_text(text):
    data = text.encode()
    n = len(data)
    if n < 24:
        head = bytes([0x60 + n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def cbor_error(code, message):
    """The map `{"__type": code, "message": message}` in CBOR."""
    return (
        bytes([0xA2])
        + cbor_text("__type")
        + cbor_text(code)
        + cbor_text("message")
        + cbor_text(message)
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/__proxy/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.forward()

    def do_POST(self):
        self.forward()

    do_PUT = do_POST
    do_DELETE = do_POST
    do_HEAD = do_POST
    do_PATCH = do_POST

    def fault(self):
        with LOCK:
            roll = RNG.random()
            if roll >= RATE:
                STATS["forwarded"] += 1
                return None
            kind = "throttled" if RNG.random() < 0.5 else "unavailable"
            STATS[kind] += 1
            return kind

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = self.fault()
        if kind is not None:
            cbor_protocol = self.headers.get("smithy-protocol") == "rpc-v2-cbor"
            json_protocol = "json" in (self.headers.get("Content-Type") or "")
            if kind == "throttled":
                status, code, message = 503, "RequestLimitExceeded", "Request limit exceeded."
                if json_protocol or cbor_protocol:
                    status, code = 400, "ThrottlingException"
            else:
                status, code, message = 503, "ServiceUnavailable", "Service is unavailable."
            if cbor_protocol:
                payload = cbor_error(code, message)
                ctype = "application/cbor"
            elif json_protocol:
                payload = json.dumps({"__type": code, "message": message}).encode()
                ctype = "application/x-amz-json-1.1"
            else:
                payload = query_error(code, message)
                ctype = "text/xml"
            self.send_response(status)
            if cbor_protocol:
                self.send_header("smithy-protocol", "rpc-v2-cbor")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()
        # Counted once the answer is on its way back, as the client counts a call it got.
        with LOCK:
            STATS["answered"] += 1


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
