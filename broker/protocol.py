"""The wire protocol every process shares: frames, header, msgpack codec, message types.

A message from a client or render (DEALER) to the broker is two frames::

    [header, body]

``header`` is 8 bytes, big-endian: protocol version (u16), message type (u16), request id (u32).
``body`` is one msgpack object. Replies carry the request id they answer; pushes use id 0.

Between the broker and a worker the client's two frames travel unchanged, with the client's
routing identity, in batches: one message carries every request (or reply) gathered in one
pass of the sender's loop, so a farm's heartbeats cost the link one message per pass, not
one per render::

    worker -> broker: [W_READY header, msgpack {"service": name}]
                      [W_HEARTBEAT header]
                      [W_REPLIES header, msgpack [[client identity, header, body], ...]]
    broker -> worker: [W_REQUESTS header, msgpack [[client identity, header, body, user], ...]]
                      [W_HEARTBEAT header] | [W_DISCONNECT header]

``user`` is the name the sender's key proved (af_auth), or nil in the trusted mode. A reply
and a push look the same: a push has request id 0.

The broker reads headers only (to route and count); it never decodes a client's body.
"""

from __future__ import annotations

import enum
import struct
from typing import Any, NamedTuple

import msgpack
import zmq

from broker import local_host  # noqa: F401  (its home is the light package)

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">HHI")
HEADER_SIZE = HEADER.size
MAX_REQUEST_ID = 0xFFFFFFFF


class MsgType(enum.IntEnum):
    """Every message type on the wire. Numbers are the contract; names are for people."""

    # client <-> server
    REQUEST = 1  # body: {"get"|"action"|"job"|"user"|...: {...}, "user_name", "host_name"}
    REPLY = 2  # body: the answer object
    ERROR = 3  # body: {"error": text, "code": ErrorCode}
    BROKER_STAT = 4  # answered by the broker itself: its counters
    BROKER_NOTICE = 5  # broker -> scheduler, never from a peer: a line for the logs table
    # render <-> server (the original's TRenderRegister / TRenderUpdate / TRenderDeregister)
    RENDER_REGISTER = 10
    RENDER_UPDATE = 11
    RENDER_DEREGISTER = 12
    RENDER_EVENTS = 13  # reply to a render, or a push to it (the original's TRenderEvents)
    # a heartbeat that reports no task: a newer one from the same render replaces it while it
    # waits in the broker, and it is the first thing refused when the server is busy
    RENDER_BEAT = 14
    # monitor <-> server: a client that watches the farm live (web process, afwatch)
    MONITOR_REGISTER = 20  # also its heartbeat; reply {"id"}
    MONITOR_DEREGISTER = 21
    MONITOR_EVENTS = 22  # push: what changed in one loop pass
    # worker <-> broker
    W_READY = 100
    W_HEARTBEAT = 101
    W_REQUESTS = 102
    W_REPLIES = 103
    W_DISCONNECT = 104


class ErrorCode(enum.IntEnum):
    """Why a request was refused; one code per failure kind."""

    BAD_MESSAGE = 1  # frames, header or body malformed
    BAD_VERSION = 2
    UNKNOWN_TYPE = 3
    TOO_LARGE = 4
    NO_SERVICE = 5  # no worker came back in time
    OVERLOADED = 6  # broker queue full
    INVALID = 7  # well-formed, but the content is wrong (unknown field, wrong type, range)
    NOT_FOUND = 8
    REFUSED = 9  # valid but not allowed now (e.g. a render name already online)
    INTERNAL = 10
    LOST = 11  # the worker went (hung, killed) after taking the request, before answering it
    STANDBY = 12  # a standby afserver (shared PostgreSQL store): ask the active one


# Which worker service serves each client-side message type. BROKER_STAT is the broker's own.
SCHEDULER = "scheduler"
# The client identity of the broker's own notices: no peer can have it (libzmq refuses an
# identity that begins with a zero byte, and gives peers without one 5 bytes of its own).
BROKER_CLIENT = b"\x00broker"

SERVICE_OF_TYPE: dict[int, str] = {
    MsgType.REQUEST: SCHEDULER,
    MsgType.RENDER_REGISTER: SCHEDULER,
    MsgType.RENDER_UPDATE: SCHEDULER,
    MsgType.RENDER_BEAT: SCHEDULER,
    MsgType.RENDER_DEREGISTER: SCHEDULER,
    MsgType.MONITOR_REGISTER: SCHEDULER,
    MsgType.MONITOR_DEREGISTER: SCHEDULER,
}

WORKER_TYPES = frozenset(
    {
        MsgType.W_READY,
        MsgType.W_HEARTBEAT,
        MsgType.W_REQUESTS,
        MsgType.W_REPLIES,
        MsgType.W_DISCONNECT,
    }
)
BATCH_MAX = 500  # messages per batch: a pass of the receiver's loop stays short
BATCH_BYTES = 4 * 1024 * 1024  # a batch grows past this only as a single large message

_TYPE_NAMES = {int(t): t.name for t in MsgType}


class ProtocolError(ValueError):
    """A frame that cannot be understood. Carries the error code to answer with."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Header(NamedTuple):
    """A tuple, not a frozen dataclass: the broker makes one per message, and a frozen
    dataclass costs several times as much to build."""

    version: int
    type: int
    request_id: int

    @property
    def type_name(self) -> str:
        return type_name(self.type)


_UNFOLLOWED_TYPES = frozenset(
    HEADER.pack(0, t, 0)[2:4] for t in (MsgType.RENDER_BEAT, MsgType.RENDER_UPDATE)
)
_NO_REQUEST_ID = bytes(4)


def awaited(header: bytes) -> bool:
    """Whether a request with this header has someone waiting on the worker's answer: not a
    push or a fire-and-forget message (request id 0), nor a render's beat or report (the
    next comes anyway). The broker follows these (LOST when the worker goes, the worker's
    liveness at full pace) and the worker keeps its full heartbeat pace after them only."""
    return header[4:] != _NO_REQUEST_ID and header[2:4] not in _UNFOLLOWED_TYPES


def type_name(msg_type: int) -> str:
    return _TYPE_NAMES.get(msg_type, f"UNKNOWN({msg_type})")


def pack_header(msg_type: int, request_id: int = 0) -> bytes:
    return HEADER.pack(PROTOCOL_VERSION, msg_type, request_id)


def unpack_header(frame: bytes) -> Header:
    """Parse a header frame; never trusts its input."""
    if len(frame) != HEADER_SIZE:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"header must be {HEADER_SIZE} bytes, got {len(frame)}"
        )
    version, msg_type, request_id = HEADER.unpack(frame)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.BAD_VERSION,
            f"protocol version {version} is not supported (server speaks {PROTOCOL_VERSION})",
        )
    return Header(version, msg_type, request_id)


def pack_body(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class Packed(bytes):
    """A body packed already (pack_body's bytes): a reply sent as it is, not packed again."""


def unpack_body(frame: bytes, max_size: int) -> Any:
    """Decode a msgpack body, refusing oversize frames before decoding them."""
    if len(frame) > max_size:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"message body of {len(frame)} bytes exceeds {max_size} bytes"
        )
    try:
        # unpackb bounds every container's declared length by the frame's own size, so a
        # small frame cannot make it allocate a huge list.
        # Invalid UTF-8 in a string becomes surrogates, so validation can name the field.
        return msgpack.unpackb(
            frame, raw=False, strict_map_key=True, unicode_errors="surrogateescape"
        )
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"body is not valid msgpack: {exc}") from exc


def error_body(code: ErrorCode, text: str) -> dict[str, Any]:
    return {"error": text, "code": int(code)}


def error_frames(request_id: int, code: ErrorCode, text: str) -> list[bytes]:
    return [pack_header(MsgType.ERROR, request_id), pack_body(error_body(code, text))]


def message(msg_type: int, body: Any, request_id: int = 0) -> list[bytes]:
    """The two frames of a client-side message."""
    return [pack_header(msg_type, request_id), pack_body(body)]


def pack_batch(entries: list[Any]) -> bytes:
    """Requests or replies of one batch, each a list of frames (bytes, or None for a user
    the trusted mode does not prove)."""
    return msgpack.packb(entries, use_bin_type=True)


def unpack_batch(frame: bytes, width: int) -> list[list[Any]]:
    """A batch from the peer across the worker link; each entry must be `width` frames.
    Only the server's own processes send batches, but a malformed one is refused whole
    rather than half-handled."""
    try:
        entries = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"batch is not valid msgpack: {exc}") from exc
    if not isinstance(entries, list):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "batch must be a list")
    for entry in entries:
        if not (
            isinstance(entry, list)
            and len(entry) == width
            and all(isinstance(f, bytes) for f in entry[:3])
            and all(f is None or isinstance(f, bytes) for f in entry[3:])
        ):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"batch entries must be lists of {width} frames"
            )
    return entries


def batches(entries: list[Any], size_of: Any) -> list[list[Any]]:
    """Cut entries into batches of at most BATCH_MAX entries and about BATCH_BYTES."""
    out: list[list[Any]] = []
    batch: list[Any] = []
    size = 0
    for entry in entries:
        n = size_of(entry)
        if batch and (len(batch) >= BATCH_MAX or size + n > BATCH_BYTES):
            out.append(batch)
            batch, size = [], 0
        batch.append(entry)
        size += n
    if batch:
        out.append(batch)
    return out


_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)


def recv_frames(socket: zmq.Socket) -> tuple[list[bytes], zmq.Frame]:
    """One whole message from a ROUTER socket without blocking: the peer's identity, then
    what it sent; and the second part as a zmq.Frame (it carries the message's properties,
    such as the User-Id af_auth proved).

    pyzmq's recv_multipart asks the socket for RCVMORE after every part, which costs more
    than the parts themselves at thousands of messages a second; a Frame knows whether more
    follow. Raises zmq.Again when nothing waits."""
    recv = socket.recv
    first = recv(_LAST)
    part = recv(_LAST, copy=False)
    frames = [first, part.bytes]
    second = part
    while part.more:
        part = recv(_LAST, copy=False)
        frames.append(part.bytes)
    return frames, second


def send_frames(socket: zmq.Socket, frames: list[bytes]) -> None:
    """send_multipart without blocking, frame by frame with plain int flags: pyzmq's enum
    arithmetic in send_multipart costs more than the sends at thousands of messages a
    second. A multipart message is queued whole or not at all, so only the first frame can
    raise (zmq.Again at the high-water mark, EHOSTUNREACH for an unknown ROUTER peer)."""
    send = socket.send
    for frame in frames[:-1]:
        send(frame, _MORE)
    send(frames[-1], _LAST)


def endpoint(host: str, port: int) -> str:
    """A ZeroMQ TCP endpoint for a host name, IPv4 or IPv6 address."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


_MONITOR_EVENT = struct.Struct("=HI")  # libzmq's monitor message: event (16 bits), value


def monitor_event(monitor: zmq.Socket, flags: int = 0) -> int:
    """The event of one message from a socket monitor (zmq.utils.monitor's parse, without
    its import of zmq.asyncio, which loads asyncio: ~5 MB in every process)."""
    frames = monitor.recv_multipart(flags)
    return int(_MONITOR_EVENT.unpack_from(frames[0])[0])


REST_HEARTBEAT_FACTOR = 5  # a worker and the broker at rest beat this many times slower


def rest_heartbeat(heartbeat_sec: float) -> float:
    """The heartbeat period between the broker and a worker while no request waits on the
    worker (af_worker_heartbeat_sec x 5: 5 s by default). Liveness at the full pace is only
    needed while someone waits for an answer: a worker given requests must be heard from
    within af_worker_heartbeat_sec x af_worker_liveness as before (Registry.expect); one that
    dies at rest is dropped on the first send to it (the workers' ROUTER is mandatory) or
    after 5 x that; a broker that comes back is announced to at once (workers/base.py)."""
    return heartbeat_sec * REST_HEARTBEAT_FACTOR


def parse_servers(text: str, default_port: int) -> list[tuple[str, int]]:
    """af_servername's 'host[:port],host[:port]' (active/standby servers, tried in turn)."""
    servers = [parse_server(part, default_port) for part in text.split(",") if part.strip()]
    if not servers:
        raise ValueError("server address is empty")
    return servers


def parse_server(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port', '[v6]:port' -> (host, port); raises ValueError with the reason."""
    text = text.strip()
    if not text:
        raise ValueError("server address is empty")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in server address {text!r}")
    return host, int(port_text)
