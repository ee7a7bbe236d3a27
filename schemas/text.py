"""The characters of every canonical string, and the rule for source ids.

Separate from schemas/fields.py because these two rules apply to every
string and every id, whatever the field: the field normalizers there, the
raw-payload sanitizer (schemas/raw.py) and the ingest key all use them.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.errors import INVALID_ID, MISSING_ID, InvalidRecord

# Every string of a canonical record goes through `clean_text`, the one rule
# for what a CRM (and a terminal, a log line, a CSV export) is given:
#
# - a lone UTF-16 surrogate (half an emoji, as a JavaScript backend that cuts
#   text by length leaves it) becomes U+FFFD; a valid pair stays one character;
# - ANSI escape sequences ("\x1b[31m", OSC titles, ...) are removed whole;
# - other C0/C1 control characters (NUL, BEL, DEL, \x80-\x9f ...) are removed.
#   Whitespace controls (\t \n \r \v \f, \x1c-\x1f, \x85) become a space in a
#   one-line field, where the field's own whitespace collapsing then applies
#   as it always did; in a multi-line field (message content) \n and \t are
#   kept, \r\n becomes \n, and the other whitespace controls become \n (so a
#   one-line field read from multi-line text still splits where it did).
#
# `clean_text(value) != value` tells a caller that cleaning changed something
# (schemas._common.prepare notes it in the record's warnings).

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS strings
    r"|\x1b[ -/]*[0-~]"  # two- and three-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # C1 CSI
)
SURROGATE = re.compile("[\ud800-\udfff]")
# Anything clean_text may change: controls (but \t, \n where multi-line), DEL, C1, surrogates.
_DIRTY = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_DIRTY_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACE_CONTROLS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"
_ONE_LINE_SPACES = str.maketrans({ch: " " for ch in _SPACE_CONTROLS})
_ONE_LINE_CONTROLS = {i: None for i in [*range(0x20), *range(0x7f, 0xa0)] if chr(i) not in _SPACE_CONTROLS}
_MULTI_LINE_CONTROLS = {
    i: (None if chr(i) not in _SPACE_CONTROLS else "\n") for i in [*range(0x20), *range(0x7f, 0xa0)]
    if chr(i) not in "\t\n"
}


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` with lone surrogates replaced, ANSI escapes and control characters removed (rules above)."""
    if not (_DIRTY if multiline else _DIRTY_ONE_LINE).search(value):
        return value
    text = replace_lone_surrogates(value)
    text = _ANSI.sub("", text)
    if multiline:
        return text.replace("\r\n", "\n").translate(_MULTI_LINE_CONTROLS)
    return text.translate(_ONE_LINE_SPACES).translate(_ONE_LINE_CONTROLS)


def replace_lone_surrogates(value: str) -> str:
    """`value` with each unpaired UTF-16 surrogate as U+FFFD (a pair written as two halves is joined)."""
    if not SURROGATE.search(value):
        return value
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# Longest source id kept as a key: the store's record_id columns are VARCHAR(255).
MAX_ID_LENGTH = 255
_ID_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def parse_source_id(value: Any) -> str:
    """A source record's id as the string it is kept under, or InvalidRecord.

    The rule (one place for the ingest key and every normalizer): a string is
    the id with surrounding whitespace trimmed; an integer is its decimal
    string (`42` and `"42"` are one record: JSON numbers are how some APIs
    write ids). Missing, null, false/true or blank: `missing_id`. A float, a
    list, an object, a string longer than MAX_ID_LENGTH characters or one
    holding control characters, escape sequences or lone surrogates:
    `invalid_id`. Such ids are refused, never cleaned: cleaning two
    different ids could make them one key.
    """
    if value is None or isinstance(value, bool):
        raise InvalidRecord(MISSING_ID, "no id")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRecord(INVALID_ID, f"the id is a {type(value).__name__}, not a string")
    text = value.strip()
    if not text:
        raise InvalidRecord(MISSING_ID, "a blank id")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidRecord(INVALID_ID, f"the id has {len(text)} characters, more than {MAX_ID_LENGTH}")
    if _ID_UNSAFE.search(text):
        raise InvalidRecord(INVALID_ID, "the id holds control characters or lone surrogates")
    return text
