"""`normalize_email`'s fast path (schemas/fields.py): emval decides where it cannot differ from email-validator.

emval (0.1.13) validates addresses in Rust, about nine times faster here than
email-validator. email-validator stays the reference: a canonical email keys
a person, so the fast path may only give the answer email-validator would
give. On tests/validator_corpus.py's 100,000 messy values (97,332 reach a
validator) the two differ on 5,656: emval accepts domains with no dot (`a@b`)
or a last label not ending in a letter (`x.a1`, `h6.2`), invalid IDNA
(`😀.com`, `xn--mnchen--3ya.de`); it refuses local parts over 64 characters
(email-validator checks that only in strict mode) and display names
(`John <john@x.com>`); and where both accept non-ASCII text, emval applies
NFKC where email-validator applies NFC (`ﬁnn` -> `finn`, `ｆｕｌｌ`, `ⅻ`).
None of these is a plain ASCII address, except the two TLD rules.

So emval decides only a lower-cased address in `PLAIN`: ASCII atext and dots,
one "@", a domain of ASCII letters, digits, hyphens and dots without "xn--".
On that class email-validator 2.4.0 either refuses or returns the text
unchanged: the local part passes its ASCII dot-atom check as it is (NFC and
the RFC 2142 lower-casing change nothing in lower-case ASCII), UTS-46 maps
lower-case ASCII host characters to themselves, and only a "xn--" label is
decoded to Unicode. emval's acceptance is taken when its normalized address
is the text itself and the domain passes the two checks emval lacks (a dot,
a last character that is a letter: email-validator's `globally_deliverable`
rules). email-validator decides everything else:

- anything outside `PLAIN`: non-ASCII, quotes, display names and angle
  brackets, domain literals, whitespace, controls, Punycode domains (their
  Unicode form depends on each library's IDNA tables);
- every refusal by emval (rare in real data; the reference then gives its
  own answer, so refusals agree by construction), and any exception from it
  (emval 0.1.13 panics on some quoted local parts, which `PLAIN` excludes);
- every value, when the installed versions are not the audited `PAIR`: an
  upgrade of either library turns the fast path off until the differences
  above are checked again and tests/test_validator_parity.py passes with it.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import email_validator
import emval

# (emval, email-validator): the audited pair.
PAIR = ("0.1.13", "2.4.0")
ACTIVE = (version("emval"), email_validator.__version__) == PAIR

# Lower-case ASCII atext and dots, one "@", then host characters: the class where emval may decide.
PLAIN = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+")
UNDECIDED = object()

# What normalize_email asks of email-validator: syntax only, no quoted local parts, no domain literals.
_VALIDATOR = emval.EmailValidator(
    allow_smtputf8=True,
    allow_empty_local=False,
    allow_quoted_local=False,
    allow_domain_literal=False,
    deliverable_address=False,
)


def email_by_emval(lowered: str) -> Any:
    """The normalized address email-validator would give for `lowered` (stripped, lower-cased), or UNDECIDED.

    Never None: a refusal is left to email-validator, which gives its own.
    """
    if not ACTIVE or not PLAIN.fullmatch(lowered):
        return UNDECIDED
    domain = lowered[lowered.index("@") + 1:]
    if "xn--" in domain or "." not in domain or not "a" <= domain[-1] <= "z":
        return UNDECIDED
    try:
        normalized = _VALIDATOR.validate_email(lowered).normalized
    except Exception:  # SyntaxError, ValueError: emval refuses it
        return UNDECIDED
    except BaseException as error:  # a Rust panic: pyo3's PanicException derives from BaseException
        if type(error).__module__ != "pyo3_runtime":
            raise
        return UNDECIDED
    return normalized if normalized == lowered else UNDECIDED
