"""Host, need and dependency masks, and the pools filter of a work node (SPEC B §1.1, §4).

Masks are compiled once when a node is submitted or edited and then matched against every
candidate render on every solve, so all parsing happens in the constructor and `match` is
a single precompiled call. Regex patterns go to RE2 through `broker.patterns` (linear time,
bounded size); a bad user pattern is refused with `Invalid` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from broker.patterns import Pattern, compile_pattern, shown
from broker.validate import Invalid

MODES = ("find", "regex")
_FIND_SEPARATORS = re.compile(r"[|;,:\s]+")
# no host name holds these: a find token with one is a regular expression in the wrong mode
_REGEX_ONLY = re.compile(r"[()\[\]{}*+?^$\\]")


def _always(_: str) -> bool:
    return True


class Mask:
    """A compiled find or regex mask; an empty one matches everything.

    Find mode splits the pattern on `| ; , :` and whitespace and matches strings starting
    with (or, with `contain`, containing) any token; regex mode is a full match (or search).
    """

    __slots__ = ("pattern", "mode", "contain", "empty", "_test")

    def __init__(
        self, pattern: str, mode: str = "find", contain: bool = False, field: str = ""
    ) -> None:
        if mode not in MODES:
            raise Invalid(field, f"mask type must be one of {', '.join(MODES)}, got {mode!r}")
        self.pattern = pattern
        self.mode = mode
        self.contain = contain
        self._test: Callable[[str], bool] = _always
        if mode == "find":
            tokens = tuple(t for t in _FIND_SEPARATORS.split(pattern) if t)
            self.empty = not tokens
            if tokens and contain:
                self._test = lambda s: any(t in s for t in tokens)
            elif tokens:
                self._test = lambda s: s.startswith(tokens)
        else:
            self.empty = not pattern
            if pattern:
                compiled = compile_pattern(pattern, field)
                self._test = compiled.search if contain else compiled.fullmatch

    def match(self, value: str) -> bool:
        """True when the value is selected; always True for an empty mask."""
        return self._test(value)

    def excludes(self, value: str) -> bool:
        """For exclude masks: an empty exclude mask excludes nothing."""
        return not self.empty and self._test(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return (self.pattern, self.mode, self.contain) == (other.pattern, other.mode, other.contain)

    def __hash__(self) -> int:
        return hash((self.pattern, self.mode, self.contain))

    def __repr__(self) -> str:
        return f"Mask({self.pattern!r}, {self.mode!r}, contain={self.contain})"


def hosts_mask(pattern: str, mode: str = "find", field: str = "hosts_mask") -> Mask:
    """`hosts_mask` / `hosts_mask_exclude`: starts-with tokens or a full regex match.

    A find mask with regex syntax (`farm.*`, `(`) would match no host and its job would
    wait forever without a word: it is refused, pointing at `hosts_mask_type`."""
    if mode == "find":
        odd = _REGEX_ONLY.search(pattern)
        if odd is not None:
            raise Invalid(
                field,
                f"{odd.group()!r} in {shown(pattern)}: a find mask is host name beginnings "
                "separated by | ; , : or spaces; for a regular expression set "
                'hosts_mask_type to "regex"',
            )
    return Mask(pattern, mode, contain=False, field=field)


def hosts_mask_words(mask: Mask, key: str = "hosts_mask") -> str:
    """What a hosts mask keeps, in the words afcmd jhmask --help uses for its two modes."""
    if mask.mode == "find":
        tokens = [t for t in _FIND_SEPARATORS.split(mask.pattern) if t]
        return (
            f"{key} '{mask.pattern}' is a find mask (the default): renders whose names start "
            f'with {" or ".join(tokens)}; a regular expression needs hosts_mask_type "regex"'
        )
    return f"{key} '{mask.pattern}' is a regular expression over the whole render name"


def need_mask(pattern: str, field: str = "need_os") -> Mask:
    """`need_os` / `need_properties`: tokens searched anywhere in e.g. `unix linux 64`."""
    return Mask(pattern, "find", contain=True, field=field)


def regex_full(pattern: str, field: str) -> Pattern:
    """Dependency and action masks: a regex used with `fullmatch`.

    Callers treat an empty pattern as "no mask" before matching; compiled, it only matches "".
    """
    return compile_pattern(pattern, field)


def _pool_matches(entry: str, pool_path: str) -> bool:
    """Absolute entries ("/x") match as a prefix of the pool path, relative ones anywhere."""
    if entry.startswith("/"):
        return pool_path.startswith(entry)
    return entry in pool_path


def pools_allow(pools: Mapping[str, int], render_pool_path: str) -> bool:
    """canRunOn pools filter: a matching entry <= -100 forbids; entries >= 100 are required."""
    required = False
    required_found = False
    for entry, value in pools.items():
        if value <= -100:
            if _pool_matches(entry, render_pool_path):
                return False
        elif value >= 100:
            required = True
            if not required_found and _pool_matches(entry, render_pool_path):
                required_found = True
    return required_found or not required


def pools_priority(pools: Mapping[str, int], render_pool_path: str) -> int:
    """Sum of the node's pool values matching the render, added to its pool priority."""
    return sum(v for entry, v in pools.items() if _pool_matches(entry, render_pool_path))
