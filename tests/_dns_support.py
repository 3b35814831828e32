"""A small authoritative DNS server on 127.0.0.1 (UDP and TCP) for the doctor tests.

Built from dnspython's own parts: zones from text (``dns.zone.from_text``), queries
parsed with ``dns.message.from_wire`` and answered with ``make_response``. It answers
only for its zones (REFUSED otherwise), sets AA, answers NXDOMAIN for absent names and
NOERROR/no data for absent types, and truncates UDP answers over 512 bytes (TC) so
clients retry over TCP, as a real server does. It counts the queries it got.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone


class Authority:
    def __init__(self, zones: dict[str, str]) -> None:
        self.zones = [dns.zone.from_text(text, origin=origin, relativize=False)
                      for origin, text in zones.items()]
        self.queries: list[tuple[str, str]] = []

    def answer(self, wire: bytes, limit: int | None) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        zone = next((z for z in self.zones if question.name.is_subdomain(z.origin)), None)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
        else:
            node = zone.get_node(question.name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
                if rdataset is not None:
                    rrset = response.find_rrset(response.answer, question.name,
                                                rdataset.rdclass, rdataset.rdtype, create=True)
                    rrset.update(rdataset)
        out: bytes = response.to_wire()
        if limit is not None and len(out) > limit:
            response.answer = []
            response.flags |= dns.flags.TC
            out = response.to_wire()
        return out


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        with contextlib.suppress(Exception):
            sock.sendto(self.server.authority.answer(data, 512), self.client_address)  # type: ignore[attr-defined]


class _Tcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.settimeout(5)
        with contextlib.suppress(Exception):
            for _ in range(16):  # a bounded number of queries per connection
                head = sock.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                data = sock.recv(size, socket.MSG_WAITALL)
                out = self.server.authority.answer(data, None)  # type: ignore[attr-defined]
                sock.sendall(struct.pack("!H", len(out)) + out)


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def dns_server(zones: dict[str, str]) -> Iterator[tuple[int, Authority]]:
    """Serve ``zones`` ({origin: zone text}) on 127.0.0.1, one port for UDP and TCP."""
    authority = Authority(zones)
    for _ in range(20):  # a port free for both protocols
        udp = _UdpServer(("127.0.0.1", 0), _Udp)
        port = udp.server_address[1]
        try:
            tcp = _TcpServer(("127.0.0.1", port), _Tcp)
        except OSError:
            udp.server_close()
            continue
        break
    else:
        raise RuntimeError("no port free for both UDP and TCP")
    threads = []
    for server in (udp, tcp):
        server.authority = authority  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        threads.append(thread)
    try:
        yield port, authority
    finally:
        for server in (udp, tcp):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(5)
