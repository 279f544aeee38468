"""A ZMTP 3.0 DEALER over a plain non-blocking TCP socket, for the render simulator.

On the wire it is what afrender's DEALER is: the ZMTP greeting, the NULL mechanism's
READY with Socket-Type DEALER and the render's Identity, then multipart messages
(https://rfc.zeromq.org/spec/23/). The server cannot tell the two apart.

Why not libzmq: one process plays thousands of renders, and every libzmq socket carries
its own mailbox, pipes and wake-ups through the I/O thread: about 80 µs of CPU for each
beat and its reply, so the simulator took most of a core of the two it shares with the
server. Here a message is one send() and its reply one recv(). Trusted mode only (no CURVE).
"""

from __future__ import annotations

import errno
import socket
import struct

GREETING = (
    b"\xff" + b"\x00" * 8 + b"\x7f"  # signature
    + b"\x03\x00"  # version 3.0
    + b"NULL".ljust(20, b"\x00")  # mechanism
    + b"\x00"  # as-server: no
    + b"\x00" * 31  # filler
)  # fmt: skip
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
_SIZE64 = struct.Struct(">Q")
_SIZE32 = struct.Struct(">I")
SEND_BUFFER_MAX = 1 << 20  # unsent bytes past this: the server is not reading, a send fails
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS)


class ZmtpError(Exception):
    """The peer broke the protocol, or the connection failed or closed."""


def frame(data: bytes, flags: int = 0) -> bytes:
    size = len(data)
    if size < 256:
        return bytes((flags, size)) + data
    return bytes((flags | _LONG,)) + _SIZE64.pack(size) + data


def command(name: bytes, properties: dict[bytes, bytes]) -> bytes:
    body = bytes((len(name),)) + name
    for key, value in properties.items():
        body += bytes((len(key),)) + key + _SIZE32.pack(len(value)) + value
    return frame(body, _COMMAND)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """tcp://host:port (IPv6 in brackets) -> (host, port)."""
    if not endpoint.startswith("tcp://"):
        raise ValueError(f"not a tcp endpoint: {endpoint}")
    host, _, port = endpoint[6:].rpartition(":")
    return host.strip("[]"), int(port)


class Dealer:
    """One connection. Messages sent before the handshake wait in the send buffer, as a
    libzmq DEALER queues them until it is connected."""

    def __init__(self, address: tuple[str, int], identity: bytes) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out = bytearray(
            GREETING + command(b"READY", {b"Socket-Type": b"DEALER", b"Identity": identity})
        )
        self.held = bytearray()  # messages sent before the peer's READY
        self.inbuf = bytearray()
        self.parts: list[bytes] = []  # of a message whose last frame has not come yet
        self.greeted = False  # the peer's greeting read
        self.ready = False  # the peer's READY read: messages flow
        code = self.sock.connect_ex(address)
        if code not in (0, *_RETRY):
            self.sock.close()
            raise ZmtpError(f"connect to {address}: {errno.errorcode.get(code, code)}")

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def wants_write(self) -> bool:
        return bool(self.out)

    def send(self, frames: list[bytes]) -> bool:
        """Queue one message and write what the socket takes; False when the server has
        left SEND_BUFFER_MAX unread (the message is dropped, as at libzmq's high-water mark)."""
        buffer = self.out if self.ready else self.held
        if len(buffer) > SEND_BUFFER_MAX:
            return False
        for data in frames[:-1]:
            buffer += frame(data, _MORE)
        buffer += frame(frames[-1])
        if self.ready:
            self.flush()
        return True

    def flush(self) -> None:
        """Write what the kernel takes now; the rest waits for the socket to be writable."""
        if not self.out:
            return
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return
        except OSError as exc:
            raise ZmtpError(f"send: {exc}") from exc
        del self.out[:sent]

    def read(self) -> list[list[bytes]]:
        """What the socket has; returns the messages it completed (each a list of frames)."""
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ZmtpError(f"recv: {exc}") from exc
        if not data:
            raise ZmtpError("the server closed the connection")
        buf = self.inbuf
        buf += data
        if not self.greeted:
            if len(buf) < len(GREETING):
                return []
            if buf[0] != 0xFF or buf[9] != 0x7F or buf[10] < 3:
                raise ZmtpError("the peer is not a ZMTP 3 peer")
            del buf[: len(GREETING)]
            self.greeted = True
        messages: list[list[bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            flags = buf[pos]
            if flags & _LONG:
                if end - pos < 9:
                    break
                size = _SIZE64.unpack_from(buf, pos + 1)[0]
                start = pos + 9
            else:
                size = buf[pos + 1]
                start = pos + 2
            if end - start < size:
                break
            body = bytes(buf[start : start + size])
            pos = start + size
            if flags & _COMMAND:
                self._command(body)
                continue
            self.parts.append(body)
            if not flags & _MORE:
                messages.append(self.parts)
                self.parts = []
        del buf[:pos]
        return messages

    def _command(self, body: bytes) -> None:
        name = body[1 : 1 + body[0]]
        if name == b"READY":
            self.ready = True
            self.out += self.held
            self.held = bytearray()
            self.flush()
        elif name == b"PING":  # the broker's ZMTP heartbeat: PONG with its context
            context = body[1 + len(name) + 2 :]
            self.out += frame(b"\x04PONG" + context, _COMMAND)
            self.flush()
        elif name == b"ERROR":
            raise ZmtpError(f"the server refused the handshake: {body[2 + body[0] :]!r}")

    def close(self) -> None:
        self.sock.close()
