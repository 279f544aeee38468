"""A task's output on the render: the kept log (middle cut) and the stream of new bytes.

Output can be gigabytes (a renderer in verbose mode), so memory is bounded by `limit`: like the
original, the first and the last halves are kept and the middle is cut, since the start says
what ran and the end says how it ended. Appends never copy what is already kept.

Streaming (`take_new`) has its own pending buffer, also bounded by `limit`. When more arrived
than a take may carry, the OLDEST bytes are sent and the rest is counted as skipped; the next
take starts with what arrives after it. So each chunk continues the previous one, and a viewer
shows one gap marker where bytes were skipped.
"""

from __future__ import annotations


class OutputBuffer:
    """Output of one task run: `text()` for the final log, `take_new()` for live streaming."""

    def __init__(self, limit: int = 1_000_000) -> None:
        if limit < 2:
            raise ValueError(f"output limit must be at least 2 bytes, not {limit}")
        self.limit = limit
        self.total = 0  # bytes received in all
        self._head_max = limit // 2
        self._tail_max = limit - self._head_max
        self._head = bytearray()
        self._tail = bytearray()  # trimmed to _tail_max when twice as long: amortised O(1)
        self._pending = bytearray()
        self._dropped = 0  # bytes that did not fit in _pending since the last take

    def append(self, data: bytes) -> None:
        if not data:
            return
        view = memoryview(data)
        self.total += len(view)
        self._stream(view)
        room = self._head_max - len(self._head)
        if room > 0:
            self._head += view[:room]
            view = view[room:]
        if not view:
            return
        if len(view) >= self._tail_max:
            self._tail[:] = view[-self._tail_max :]
        else:
            self._tail += view
            if len(self._tail) >= 2 * self._tail_max:
                del self._tail[: len(self._tail) - self._tail_max]

    def _stream(self, view: memoryview) -> None:
        room = self.limit - len(self._pending)
        if room >= len(view):
            self._pending += view
            return
        if room > 0:
            self._pending += view[:room]
        self._dropped += len(view) - max(room, 0)

    @property
    def cut(self) -> int:
        """Bytes dropped from the middle of the kept log."""
        return max(0, self.total - len(self._head) - self._tail_max)

    def text(self) -> str:
        """The kept output as text; a marker line stands where the middle was cut."""
        tail = self._tail[-self._tail_max :] if len(self._tail) > self._tail_max else self._tail
        cut = self.cut
        if not cut:
            return (self._head + tail).decode("utf-8", errors="replace")
        head = self._head.decode("utf-8", errors="replace")
        lead = "" if head.endswith("\n") else "\n"
        marker = f"{lead}[... {cut} bytes cut ...]\n"
        return head + marker + tail.decode("utf-8", errors="replace")

    def take_new(self, max_bytes: int = 65536) -> tuple[bytes, int]:
        """(new bytes since the last take, at most max_bytes; count of bytes skipped)."""
        chunk = bytes(self._pending[:max_bytes])
        skipped = self._dropped + max(0, len(self._pending) - max_bytes)
        self._pending.clear()
        self._dropped = 0
        return chunk, skipped
