"""One secret check and one redaction for every key, token and password the sync holds.

Why one place: a secret leaks through the path nobody thought of (an
exception of an HTTP library that quotes the header it refused, a URL in a
vendor SDK's exception, a repr in a log line), and Dagster stores what reaches it
for good: the run database, the event log, the compute logs. So

- every secret read from the environment goes through `check_secret`:
  surrounding whitespace is stripped (the trailing newline of a mounted
  secret), with a warning that names the variable; an inner control
  character or whitespace is refused with a `ConfigError` that names the
  variable and never the value;
- each checked secret is registered, and `scrub` removes every registered
  secret (as sent, as repr/escapes show it, URL- and XML-encoded) from any
  text: every error message built from a library's exception goes through it;
- `wrap` turns any exception of a vendor library into a `ConnectorError`
  whose message is scrubbed and which keeps no `__cause__`/`__context__`
  (Dagster serializes the whole chain with the traceback).
"""

from __future__ import annotations

import html
import logging
import threading
import unicodedata
from typing import Iterable, TypeVar
from urllib.parse import quote, quote_plus

from connectors.errors import ConfigError, ConnectorError

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_forms: tuple[str, ...] = ()  # every registered secret and its encodings, longest first

E = TypeVar("E", bound=ConnectorError)


def _encodings(secret: str) -> set[str]:
    """The forms a secret takes in library messages: raw, repr-escaped, URL- and XML-encoded."""
    forms = {secret, repr(secret)[1:-1], secret.encode("unicode_escape").decode("ascii"),
             quote(secret, safe=""), quote_plus(secret), html.escape(secret)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register(*secrets: str | None) -> None:
    """Remember secrets so that `scrub` removes them from every message, in this process, from now on."""
    global _forms
    fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} - _secrets
    if not fresh:
        return
    with _lock:
        _secrets.update(fresh)
        forms = set(_forms)
        for secret in fresh:
            forms |= _encodings(secret)
        _forms = tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every registered secret (and `extra`) replaced by REDACTED."""
    for secret in extra:
        for form in sorted(_encodings(secret), key=len, reverse=True):
            text = text.replace(form, REDACTED)
    for form in _forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def describe(exc: BaseException) -> str:
    """`TypeName: message` of an exception, scrubbed: safe to put in an error or a log line."""
    message = scrub(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def wrap(error: E) -> E:
    """`error` made safe to raise outside: scrubbed message and args, no chained cause or context.

    Use as `raise wrap(SomeError(...)) from None`; the `from None` is what
    drops the context, this function what cleans the message."""
    error.args = tuple(scrub(a) if isinstance(a, str) else a for a in error.args)
    error.__cause__ = None
    error.__suppress_context__ = True
    return error


def _is_refused(ch: str) -> bool:
    """Control characters (C0, DEL, C1), format characters and any whitespace, inside a secret."""
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def check_secret(variable: str, value: str | None, *, service: str) -> str:
    """The secret from `variable`, stripped and registered for redaction.

    Surrounding whitespace (a pasted or mounted secret's trailing newline)
    is stripped with a warning naming the variable. An empty value, or a
    control character or whitespace inside it, raises ConfigError naming the
    variable only: such a header value is refused by every HTTP library
    with an exception that quotes it.
    """
    if value is None or not value.strip():
        raise ConfigError(service, f"{variable} is empty; set it to the secret itself")
    secret = value.strip()
    register(secret)
    if secret != value:
        log.warning("%s: %s had surrounding whitespace (a trailing newline?); stripped it", service, variable)
    if any(_is_refused(ch) for ch in secret):
        raise ConfigError(service, f"{variable} contains a control character or whitespace inside it; "
                                   "paste the secret again without it")
    return secret
