"""Users' regular expressions (masks, pool patterns), compiled for a linear-time engine.

Any user may name jobs and send masks, and masks run on the scheduler's single loop: with a
backtracking engine, `(a+)+$` against 40 characters holds the farm for minutes. RE2 matches
in time linear in the text, so here every user pattern is compiled with RE2 and bounded:

- ``PATTERN_MAX`` characters: 1,024 lets any job name (512 characters at most) be matched
  escaped, as `afcmd jshow NAME` does; longer lists of hosts belong in pools;
- ``PROGRAM_MAX`` RE2 instructions: a test costs at worst about the program's size times the
  text's length, so the cap bounds it (~0.1-3 ms for a 512-character name with the worst
  patterns measured, ~1-5 µs for usual masks); `farm[0-9]+` is 10 instructions, an escaped
  512-character name about 1,000 even in Cyrillic;
- ``MEMORY_MAX`` bytes for the compiled program and its DFA cache, per pattern.

A refused pattern raises ``Invalid`` naming the field, and says what RE2 does not support
(backreferences, lookarounds, …) where that is the cause.
"""

from __future__ import annotations

import re2

from broker.validate import Invalid

PATTERN_MAX = 1024
PROGRAM_MAX = 2000
MEMORY_MAX = 2 << 20
_ANSWERS_MAX = 4096  # names remembered per pattern: renders, jobs and blocks repeat

# RE2's error text -> the Python `re` feature it means (RE2 names only the first characters)
_UNSUPPORTED = {
    "(?=": "lookahead (?=...)",
    "(?!": "negative lookahead (?!...)",
    "(?<=": "lookbehind (?<=...)",
    "(?<!": "negative lookbehind (?<!...)",
    "(?P=": "named backreference (?P=name)",
    "(?>": "atomic group (?>...)",
    "(?(": "conditional group (?(...)...)",
    "(?#": "comment group (?#...)",
    "\\k": "named backreference \\k<name>",
    "\\Z": "end anchor \\Z (write \\z or $)",
    "\\G": "\\G",
    "++": "possessive quantifier ++",
    "*+": "possessive quantifier *+",
    "?+": "possessive quantifier ?+",
}


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refusal is the caller's reply, not a line on stderr
    options.max_mem = MEMORY_MAX
    options.never_capture = True  # masks only say yes or no; no groups lets RE2 use its DFA
    options.case_sensitive = not ignore_case
    return options


_OPTIONS = {False: _options(False), True: _options(True)}


def shown(text: str, limit: int = 60) -> str:
    """A pattern quoted in a message, cut if long so that the reply stays readable."""
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit]}…'"


def unsupported(pattern: str, error: str) -> str | None:
    """The Python `re` feature that RE2 refused in `pattern`, in words; None if not one."""
    for token, words in _UNSUPPORTED.items():
        if error.endswith(f": {token}") or (token == "(?P=" and error.endswith(": (?P")):
            if token == "(?P=" and token not in pattern:
                continue
            return words
    marker = "invalid escape sequence: \\"
    if error.startswith(marker) and error[len(marker) :].isdigit():
        return f"backreference \\{error[len(marker) :]}"
    return None


def refusal(pattern: str, error: str) -> str:
    """Why `pattern` is refused, from RE2's error text (pure, for messages and tests)."""
    feature = unsupported(pattern, error)
    if feature is not None:
        return (
            f"{feature} is not supported in {shown(pattern)}: patterns run on a linear-time "
            "engine (RE2 syntax) without backreferences or lookarounds"
        )
    if error.startswith("pattern too large"):
        return f"{shown(pattern)} is too complex for a mask"
    what, _, fragment = error.rpartition(": ")
    if what and fragment == pattern:  # RE2 quotes the part it stopped at: here all of it
        error = what
    return f"not a valid regular expression {shown(pattern)}: {error}"


class Pattern:
    """A user's compiled regex: `fullmatch` and `search` answer yes or no in linear time.

    Answers are remembered per text (bounded): the solver and the dependency checks test
    the same render and job names again and again, and a dict lookup is ~30 times cheaper
    than a call into RE2 through its Python wrapper."""

    __slots__ = ("text", "_regex", "_full", "_found")

    def __init__(self, text: str, regex: re2._Regexp) -> None:
        self.text = text
        self._regex = regex
        self._full: dict[str, bool] = {}
        self._found: dict[str, bool] = {}

    def fullmatch(self, value: str) -> bool:
        answer = self._full.get(value)
        if answer is None:
            answer = self._regex.fullmatch(value) is not None
            _remember(self._full, value, answer)
        return answer

    def search(self, value: str) -> bool:
        answer = self._found.get(value)
        if answer is None:
            answer = self._regex.search(value) is not None
            _remember(self._found, value, answer)
        return answer

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


def _remember(answers: dict[str, bool], value: str, answer: bool) -> None:
    if len(answers) >= _ANSWERS_MAX:
        answers.clear()
    answers[value] = answer


def compile_pattern(text: str, field: str, ignore_case: bool = False) -> Pattern:
    """`text` compiled for matching users' names, or `Invalid` naming `field`."""
    if len(text) > PATTERN_MAX:
        raise Invalid(field, f"pattern is {len(text)} characters long; at most {PATTERN_MAX}")
    try:
        regex = re2.compile(text, _OPTIONS[ignore_case])
    except re2.error as exc:
        error = exc.args[0] if exc.args else ""
        error = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        raise Invalid(field, refusal(text, error)) from None
    # the wrapper keeps the compiled RE2 object as `_regexp` (google-re2 is pinned)
    size = regex._regexp.ProgramSize()
    if size > PROGRAM_MAX:
        raise Invalid(
            field,
            f"{shown(text)} is too complex for a mask ({size} steps; at most {PROGRAM_MAX}): "
            "name fewer hosts or use a pool",
        )
    return Pattern(text, regex)
