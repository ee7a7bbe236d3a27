"""Messy emails and phones for the validator parity test (tests/test_validator_parity.py).

Deterministic (a fixed seed, `random.Random`), offline, and independent of the
code under test: realistic values (the sandbox's people, common and IDN
domains, every region's example numbers from libphonenumber's metadata) run
through mutations people, platforms and attackers produce. `emails(n)` gives
`n` values for `normalize_email(value)`; `phones(n)` gives `n` pairs for
`normalize_phone(value, region)`. A few values are not strings (None, bool,
int, float, bytes), as payloads hold.

tests/test_validator_parity.py runs both: rphonenumbers was admitted on
`phones`, emval 0.1.13 on `emails`, where ~5.7% of 100,000 values differ from
email-validator (missing or numeric TLDs and emoji domains accepted, display
names and local parts over 64 octets refused, NFKC instead of NFC), so it
decides only plain ASCII addresses (schemas/email_fast_path.py). The email
edge cases include the ASCII rules only emval's refusal keeps it in line on
(lengths, hyphens, special-use names, R-LDH labels).
"""

from __future__ import annotations

import random
import string
from typing import Any, Callable

import phonenumbers

from sandbox.seed import (
    COMPANIES,
    FIRST_NAMES,
    LAST_NAMES,
    PERSONAL_DOMAINS,
    PLACEHOLDER_PHONES,
    UNICODE_FIRST_NAMES,
    UNICODE_LAST_NAMES,
    PeoplePool,
    ascii_slug,
    format_phone,
)

SEED = 20260517
PEOPLE = 4000  # the sandbox people drawn from (its PeoplePool caches 16384)

# --- emails ------------------------------------------------------------------------------

_ASCII_DOMAINS = (
    *PERSONAL_DOMAINS, "gmail.com", "yahoo.co.uk", "outlook.com", "hotmail.fr", "web.de", "mail.ru",
    "icloud.com", "proton.me", "uni-heidelberg.de", "cs.stanford.edu", "a.b.c.d.e.co", "x.io", "q.ai",
    "b.co", "my-company.example", "123.com", "1st-choice.net", "t.co", "GMAIL.COM", "Example.Org",
    "sub.domain.example.co.jp", "xn--mnchen-3ya.de", "xn--bcher-kva.example", "example.internal",
    "corp.lan", "mail.home", "x.app", "x.dev", "museum.museum", "a.travel", "x.xn--p1ai",
)
_IDN_DOMAINS = (
    "münchen.de", "bücher.example", "例え.jp", "пример.рф", "δοκιμή.gr", "ñandú.com.ar", "straße.de",
    "faß.de", "ß.de", "cafe\u0301.fr", "café.fr", "ＥＸＡＭＰＬＥ.com", "example。com", "ex\uff0ecom.org",
    "😀.com", "mail.😀.example", "ﬁ.com", "ⅻ.com", "ǅ.com", "Ⅻ.example", "العربية.example", "עברית.example",
    "a\u200d.com", "a\u200c.com", "xn--zz.com", "xn--.com", "xn--a.com", "ab--cd.com", "ab--cd.xn--p1ai",
    "中国.中国", "x.香港", "x.భారత్", "ｇｍａｉｌ.ｃｏｍ", "İstanbul.tr", "ıstanbul.tr",
)
_SPECIAL_DOMAINS = (
    "x.test", "test", "x.local", "local", "localhost", "x.localhost", "x.invalid", "invalid", "x.onion",
    "x.arpa", "1.in-addr.arpa", "home.arpa", "example", "x.example", "example.com", "example.net",
    "x.TEST", "x.Local", "LOCALHOST", "test.com", "local.com", "x.test.com", "invalid.org",
)
_BROKEN_DOMAINS = (
    "gmail", "com", "x.123", "x.c1", "x.1c", "1.2.3.4", "x.com.", ".x.com", "x..com", "-x.com", "x-.com",
    "x.-com", "x_y.com", "x y.com", "x.co m", "x,com", "x.com/", "x.com?", "x.com>", "", ".", "..",
    "[1.2.3.4]", "[127.0.0.1]", "[IPv6:::1]", "[IPv6:2001:db8::1]", "[300.1.1.1]", "[1.2.3]", "[x]",
    "x.c", "x.co_", "x.com:25", "x@y.com", "(comment)x.com", "x.com(comment)", "x.\u0000com",
    "x.c\u00f6m", "x.com\u200b", "\u200bx.com", "x.co\u0301m", "255.255.255.255", "x." + "c" * 64,
)
_ATEXT_SPECIAL = "!#$%&'*+/=?^`{|}~-_"
_UNICODE_LOCALS = (
    "jürgen", "josé", "zoë", "søren", "łukasz", "δοκιμή", "пользователь", "用户", "ユーザー", "사용자",
    "😀", "hi😀there", "ǅemal", "ﬁnn", "Ⅻ", "e\u0301", "é", "a\u037eb", "İbrahim", "ıi", "ß", "SS",
    "\u00a0a", "a\u2028b", "a\u202eb", "\u0661\u0662", "١٢٣", "mañana", "ñ", "Ω", "Ω", "Å", "Å",
    "ｆｕｌｌ", "ⓐⓑ", "x\u0300", "\u0300x", "a\u00adb", "a\ufe0fb", "\U0001f1fa\U0001f1f8",
)
_LOCAL_SPECIALS = (
    "info", "INFO", "Sales", "support", "postmaster", "abuse", "noc", "www", "ftp", "news", "webmaster",
    "a", "x", "1", "0", "a.b", "a+b", "a-b", "a_b", "a/b", "a=b", "first.last+tag", "o'brien", "d'angelo",
    "{x}", "~x", "x|y", "#1", "!", "$$", "%x", "&", "*", "?", "^", "`", "a.b.c.d", "a" * 64, "a" * 65,
    "b" * 100, "a" * 300, "_", "-", "+", "x..y", ".x", "x.", "..", ".", "",
)
_DISPLAY_NAMES = (
    "John", "John Smith", "Smith, John", '"Smith, John"', '"John \\"JJ\\" Smith"', "Jürgen Müller",
    "=?utf-8?q?J=C3=BCrgen?=", "J. R.", "<John>", "John <", "😀", "", " ", "John (work)", "Dr. Ann O'Neil",
    '"John@x.com"', "john@x.com",
)
_SPACES = (" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff", "\u2028", "\x0b", "\x0c")
_INVISIBLES = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202e", "\u00ad", "\u180e")
_CONTROLS = ("\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\x85", "\x9f", "\ud800", "\udfff")
_EMOJI = ("😀", "👍🏽", "❤️", "🇺🇸", "👨‍👩‍👧", "\u2764", "✉", "📧", "🔥")


def _ascii_local(rng: random.Random, pool: PeoplePool) -> str:
    if rng.random() < 0.35:
        return pool.person(rng.randrange(PEOPLE)).email_local
    first = ascii_slug(rng.choice(FIRST_NAMES + UNICODE_FIRST_NAMES)) or "x"
    last = ascii_slug(rng.choice(LAST_NAMES + UNICODE_LAST_NAMES)) or "y"
    shape = rng.randrange(9)
    if shape == 0:
        return f"{first}.{last}"
    if shape == 1:
        return f"{first[0]}{last}{rng.randrange(100)}"
    if shape == 2:
        return f"{first}_{last}"
    if shape == 3:
        return f"{first}+{rng.choice(('news', 'crm', 'x', '2024', ''))}"
    if shape == 4:
        return f"{first}-{last}.{rng.randrange(10**6)}"
    if shape == 5:
        return "".join(rng.choice(string.ascii_lowercase + string.digits + _ATEXT_SPECIAL + ".")
                       for _ in range(rng.randrange(1, 20)))
    if shape == 6:
        return rng.choice(_LOCAL_SPECIALS)
    if shape == 7:
        return f"{first}{rng.choice(_ATEXT_SPECIAL)}{last}"
    return f"{first}{last}"


def _local(rng: random.Random, pool: PeoplePool) -> str:
    roll = rng.random()
    if roll < 0.80:
        return _ascii_local(rng, pool)
    if roll < 0.93:
        word = rng.choice(_UNICODE_LOCALS)
        return rng.choice((word, f"{word}.{_ascii_local(rng, pool)}", f"{_ascii_local(rng, pool)}{word}"))
    unicode_name = rng.choice(UNICODE_FIRST_NAMES + UNICODE_LAST_NAMES).lower().replace(" ", "")
    return rng.choice((unicode_name, unicode_name + str(rng.randrange(100))))


def _domain(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(_ASCII_DOMAINS)
    if roll < 0.65:
        return ascii_slug(rng.choice(COMPANIES)) + rng.choice((".example", ".com", ".co.uk", ".io", ".de"))
    if roll < 0.77:
        return rng.choice(_IDN_DOMAINS)
    if roll < 0.87:
        return rng.choice(_SPECIAL_DOMAINS)
    if roll < 0.95:
        return rng.choice(_BROKEN_DOMAINS)
    labels = []
    for _ in range(rng.randrange(1, 6)):
        size = rng.choice((1, 2, 3, 10, 62, 63, 64, 70))
        labels.append("".join(rng.choice(string.ascii_lowercase + string.digits + "-") for _ in range(size)))
    return ".".join(labels) + rng.choice(("", ".com", ".x", ".42", "." + "z" * 63))


def _insert(rng: random.Random, text: str, piece: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + piece + text[at:]


def _random_case(rng: random.Random, text: str) -> str:
    return "".join(ch.upper() if rng.random() < 0.5 else ch for ch in text)


def _quote_local(rng: random.Random, local: str) -> str:
    inner = rng.choice((local, local + " " + local, local.replace(".", ".."), local + "@x", local + '\\"q',
                        local + "\\\\", "", " "))
    return f'"{inner}"'


def _email_mutations() -> list[tuple[float, Callable[[random.Random, str, str], tuple[str, str]]]]:
    """(probability, mutation of (local, domain)) applied before the address is assembled."""
    return [
        (0.03, lambda r, l, d: (_quote_local(r, l), d)),
        (0.03, lambda r, l, d: ("." + l if r.random() < 0.5 else l + ".", d)),
        (0.03, lambda r, l, d: (l.replace(".", "..") if "." in l else l + ".." + l, d)),
        (0.02, lambda r, l, d: (l, d + ".")),
        (0.03, lambda r, l, d: (l + r.choice(("a" * 50, "b" * 64)), d)),
        (0.02, lambda r, l, d: (l, ("x" * r.choice((63, 64, 200))) + "." + d)),
        (0.02, lambda r, l, d: (l, ".".join(["abcdefghij" * 6] * 4) + "." + d)),
        (0.02, lambda r, l, d: (_insert(r, l, r.choice(_EMOJI)), d)),
        (0.02, lambda r, l, d: (l, _insert(r, d, r.choice(_EMOJI)))),
        (0.02, lambda r, l, d: (_insert(r, l, r.choice(_INVISIBLES)), d)),
        (0.02, lambda r, l, d: (l, _insert(r, d, r.choice(_INVISIBLES)))),
        (0.015, lambda r, l, d: (_insert(r, l, r.choice(_CONTROLS)), d)),
        (0.015, lambda r, l, d: (l, _insert(r, d, r.choice(_CONTROLS)))),
        (0.02, lambda r, l, d: (_insert(r, l, r.choice((" ", "\t", ",", ";", ":", "<", ">", "(", ")", "[", "]", "\\", '"', "@"))), d)),
        (0.02, lambda r, l, d: (l, _insert(r, d, r.choice((" ", "-", "_", ".", "..", ",", "@", "#", "%", "/"))))),
        (0.02, lambda r, l, d: (l, d.upper())),
        (0.01, lambda r, l, d: ("", d)),
        (0.01, lambda r, l, d: (l, "")),
    ]


_EMAIL_MUTATIONS = _email_mutations()


def _wrap_email(rng: random.Random, address: str) -> str:
    """Mutations of the whole address: case, whitespace, mailto:, display names, separators."""
    if rng.random() < 0.10:
        address = rng.choice((address.upper, address.title, address.capitalize, lambda: _random_case(rng, address)))()
    if rng.random() < 0.05:
        address = rng.choice(("mailto:", "MAILTO:", "Mailto: ", "mailto:  ", "mailto://", "email:", "mail:")) + address
    if rng.random() < 0.01:
        address = address + rng.choice(("?subject=hi", "%20", "&cc=b@x.com"))
    if rng.random() < 0.05:
        name = rng.choice(_DISPLAY_NAMES)
        address = rng.choice((f"{name} <{address}>", f"{name}<{address}>", f"<{address}>", f"{name} <{address}",
                              f"{name} {address}", f"<{address}> {name}", f"{name} <<{address}>>"))
    if rng.random() < 0.01:
        address = rng.choice((f"{address}, other@example.com", f"{address};{address}", f"{address} {address}"))
    if rng.random() < 0.12:
        before = rng.choice(("",) + _SPACES)
        after = rng.choice(("",) + _SPACES)
        address = before + address + after
    if rng.random() < 0.02:
        address = address.replace("@", rng.choice(("＠", "﹫", " @ ", "@@", " at ", "(at)", "[at]")), 1)
    if rng.random() < 0.01:
        address = address.replace(".", rng.choice(("。", "．", "｡", " dot ")))
    return address


def _email_edge_cases() -> list[Any]:
    """Hand-written values in the spirit of hypothesis' edge cases, and what the tests know of."""
    return [
        None, True, False, 0, 1, 1.5, b"a@example.com", ["a@example.com"], {"email": "a@example.com"},
        "", " ", "@", "@@", "a@", "@a.com", "a@b", "a@b.c", "a@b.co", "A@B.CO", "not an email", "n/a", "none", "-",
        "john@example.com", " John.Smith@Example.COM ", "mailto:john@example.com", "MAILTO: John@Example.com",
        "John <john@example.com>", '"Smith, John" <john@example.com>', "<john@example.com>",
        '"john"@example.com', '"john doe"@example.com', "john..doe@example.com", ".john@example.com",
        "john.@example.com", "john@localhost", "john@x.test", "john@x.local", "john@x.invalid", "john@example",
        "john@[127.0.0.1]", "john@[IPv6:::1]", "john@example.com.", "ü@münchen.de", "a@xn--mnchen-3ya.de",
        "a\x00@x.com", "a@x\x00.com", "\x00", "a\u200b@x.com", "😀@😀.com", "a" * 64 + "@x.com", "a" * 65 + "@x.com",
        "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", "a" * 240 + "@x.com", ("a" * 63 + ".") * 4 + "@x.com",
        "a@" + ("b" * 63 + ".") * 4 + "com", "a@" + ("b" * 60 + ".") * 4 + "com", "x@" + "a." * 126 + "co",
        "\ud800@x.com", "a@\udfff.com", "a@b.com\n", "\ta@b.com", "a@b.com\u00a0", "\u3000a@b.com\u3000",
        "mailto:", "mailto:a", "mailto:<a@b.com>", "Name <>", "<>", "a@b@c.com", '"a@b"@c.com',
        *_plain_ascii_edge_cases(),
    ]


def _plain_ascii_edge_cases() -> list[str]:
    """Lower-case ASCII addresses at each of email-validator's refusals, and just inside them."""
    label = "b" * 63
    return [
        "a@com", "a@x.a1", "a@h6.2", "a@x.c-m", "a@x.co-", "a@x.-co.com", "a@x-.com", "a@-x.com", "a@x_y.com",
        "a@ab--cd.com", "a@x.ab--cd.com", "a@a--b.com", "a@abc--d.com", "a@xn--cd.com", "a@xn--mnchen--3ya.de",
        "a@x.arpa", "a@home.arpa", "a@x.onion", "a@x.localhost", "a@x.invalid", "a@arpa.com", "a@x.internal",
        "a@test.com", "a@x.example", "a..b@x.com", "a.b.@x.com", "-@x.com", "a@x.com-", "a@1.2.3.4.com",
        f"a@{label}.{label}.{label}.{'c' * 60}", f"a@{label}.{label}.{label}.{'c' * 61}",  # 254, 255 octets
        f"{'a' * 64}@{label}.{label}.{'c' * 57}.com", f"{'a' * 64}@{label}.{label}.{'c' * 58}.com",
        f"{'a' * 200}@x.com", f"{'a' * 248}@x.com", f"{'a' * 249}@x.com", f"a@{'c' * 64}.com",
    ]


def emails(count: int, seed: int = SEED) -> list[Any]:
    """`count` messy email values (deterministic for a seed)."""
    rng = random.Random(seed)
    pool = PeoplePool()
    values: list[Any] = _email_edge_cases()
    while len(values) < count:
        roll = rng.random()
        if roll < 0.015:  # hypothesis-like: short text over an alphabet of what breaks parsers
            alphabet = "a@.-_+\"<> ()[]\\,;:ü😀\x00\u200b\t" + string.ascii_letters[:6]
            values.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))))
            continue
        if roll < 0.03:
            person = pool.person(rng.randrange(PEOPLE))
            values.append(rng.choice((person.email, person.email.upper(), f" {person.email}\t",
                                      f"{person.full_name} <{person.email}>")))
            continue
        local, domain = _local(rng, pool), _domain(rng)
        for probability, mutate in _EMAIL_MUTATIONS:
            if rng.random() < probability:
                local, domain = mutate(rng, local, domain)
        values.append(_wrap_email(rng, f"{local}@{domain}"))
    return values[:count]


# --- phones ------------------------------------------------------------------------------

REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", None)
# Called with these too, now and then: other platforms' countries, and nonsense.
_OTHER_REGIONS = ("CA", "AU", "JP", "CN", "MX", "ES", "IT", "NL", "ZA", "NG", "AE", "SG", "RU", "KR", "ZZ", "001",
                  "us", "", "XX")
_TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    phonenumbers.PhoneNumberType.UAN, phonenumbers.PhoneNumberType.PAGER,
    phonenumbers.PhoneNumberType.SHARED_COST,
)


def _example_numbers() -> list[tuple[str, int, str]]:
    """(region, country code, national significant number) of every region's example numbers."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append((region, number.country_code, phonenumbers.national_significant_number(number)))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.append(("001", code, phonenumbers.national_significant_number(number)))
    return found


_UNICODE_DIGITS = (
    "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic
    "۰۱۲۳۴۵۶۷۸۹",  # Extended Arabic-Indic (Persian)
    "０１２３４５６７８９",  # full-width
    "०१२३४५६७८९",  # Devanagari
    "০১২৩৪৫৬৭৮৯",  # Bengali
    "๐๑๒๓๔๕๖๗๘๙",  # Thai
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",  # mathematical bold
    "⓪①②③④⑤⑥⑦⑧⑨",  # circled (not decimal digits)
    "⁰¹²³⁴⁵⁶⁷⁸⁹",  # superscripts
)
_SEPARATORS = (" ", "-", ".", "/", "  ", " - ", "\u00a0", "\u2013", "\u2014", "\u2010", "\u2011", "\u2212", "\u00ad",
               "~", "\t", "\u30fb", "_", ",", "\u200b", "\u3000", "\uff0d", "\u2009", "*", "|", "\\", "'", "\n")
_EXTENSIONS = (" ext. 12", " ext 12", "ext.12", " x12", " x 12", "x12", " #12", "#12", ";ext=12", " extension 12",
               " Ext. 1234", " EXT 99999", " ext. 1234567", " ext. 12345678901", " x", " ext.", ",12", ",,12",
               " доб. 12", " anexo 12", " ramal 12", " Durchwahl 12", " poste 12", " ext. ١٢", " #", " ;ext=",
               " int. 5", " ext 0", " x0012")
_LETTER_PHONES = ("1-800-FLOWERS", "555-CALL-NOW", "1-800-GOT-JUNK", "+1 415 555 CALL", "1-800-CALL-ATT",
                  "0800-FLOWERS", "+44 800 FLOWERS", "1800FLOWERS", "CALL-ME-NOW", "555-0100 ext. ONE",
                  "+1 (800) MY-APPLE", "800-i-am-here", "1-888-SHOP-NOW-1", "TEL-1234-5678", "one two three")
_JUNK_PHONES = ("", " ", "n/a", "N/A", "none", "-", "--", "0", "00", "000", "+", "++", "+1", "1", "12345",
                "0000000000", "1111111111", "1234567890", "9999999999", "+0000000000", "+1 000 000 0000",
                "(000) 000-0000", "call me", "?", "tbd", "unknown", "+44", "+49 ", "++1 212 555 0100",
                "+-1", "+(1)", "1e10", "12.5", "-1", "0x1F", "+1 212 555 0100 +1 212 555 0101",
                "212 555 0100 / 212 555 0101", "212-555-0100 or 212-555-0101")


def _nanp(rng: random.Random) -> str:
    area = rng.choice(("212", "415", "555", "800", "888", "900", "911", "411", "011", "123", "201", "646",
                       "917", "310", "604", "416", "242", "787", "876", "671", f"{rng.randrange(100, 1000)}"))
    exchange = rng.choice(("555", "123", "000", "911", "222", f"{rng.randrange(100, 1000)}",
                           f"{rng.randrange(200, 1000)}"))
    line = rng.choice(("0100", "0199", "1234", "0000", f"{rng.randrange(10000):04d}"))
    return "1" + area + exchange + line


def _digits_render(rng: random.Random, cc: int, nsn: str) -> str:
    """The number as someone types it: international, national, IDD, grouped in random ways."""
    def grouped(digits: str) -> str:
        out, i = [], 0
        sep = rng.choice(_SEPARATORS) if rng.random() < 0.6 else " "
        while i < len(digits):
            step = rng.choice((2, 3, 3, 4))
            out.append(digits[i:i + step])
            i += step
        if rng.random() < 0.2 and len(out) > 1:
            out[0] = f"({out[0]})"
        return sep.join(out)

    roll = rng.random()
    if roll < 0.25:
        return f"+{cc}{nsn}"
    if roll < 0.45:
        return f"+{cc} {grouped(nsn)}"
    if roll < 0.65:
        return grouped(nsn)
    if roll < 0.72:
        return "0" + grouped(nsn)
    if roll < 0.78:
        return rng.choice(("00", "011", "0011", "010", "001", "+00", "8~10", "810")) + f"{cc} {grouped(nsn)}"
    if roll < 0.83:
        return f"{cc}{nsn}"
    if roll < 0.87:
        return f"+{cc} (0){grouped(nsn)}"
    if roll < 0.92:
        try:  # the reference's own formats: it writes them, so people copy them
            number = phonenumbers.parse(f"+{cc}{nsn}", None)
        except phonenumbers.NumberParseException:
            return f"+{cc}{nsn}"
        kind = rng.choice((phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                           phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.RFC3966))
        return phonenumbers.format_number(number, kind)
    if roll < 0.96:
        return f"+ {cc} {grouped(nsn)}"
    return grouped(f"{cc}{nsn}")


def _mutate_digits(rng: random.Random, nsn: str) -> str:
    roll = rng.random()
    if roll < 0.35:
        return nsn
    if roll < 0.55:  # one digit changed: mostly still valid, sometimes not
        i = rng.randrange(len(nsn))
        return nsn[:i] + str(rng.randrange(10)) + nsn[i + 1:]
    if roll < 0.65:  # too short
        return nsn[:max(1, len(nsn) - rng.randrange(1, 5))]
    if roll < 0.75:  # too long
        return nsn + "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 6)))
    if roll < 0.82:
        return "0" * rng.randrange(1, 3) + nsn
    if roll < 0.90:
        return "".join(str(rng.randrange(10)) for _ in range(len(nsn)))
    return "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 20)))


def _phone_text(rng: random.Random, examples: list[tuple[str, int, str]], pool: PeoplePool) -> tuple[str, str | None]:
    roll = rng.random()
    home: str | None
    if roll < 0.25:
        person = pool.person(rng.randrange(PEOPLE))
        text, home = format_phone(person, rng.randrange(8)), person.country
    elif roll < 0.45:
        digits = _mutate_digits(rng, _nanp(rng)[1:])
        text, home = _digits_render(rng, 1, digits), "US"
    elif roll < 0.92:
        home, cc, nsn = rng.choice(examples)
        text = _digits_render(rng, cc, _mutate_digits(rng, nsn))
    elif roll < 0.96:
        text, home = rng.choice(_LETTER_PHONES + PLACEHOLDER_PHONES), "US"
    else:
        text, home = rng.choice(_JUNK_PHONES), None
    return text, home


def _wrap_phone(rng: random.Random, text: str) -> str:
    if rng.random() < 0.08:
        text += rng.choice(_EXTENSIONS)
    if rng.random() < 0.03:
        text = rng.choice(_LETTER_PHONES)[: rng.randrange(3, 10)] + text[rng.randrange(len(text) + 1):] \
            if rng.random() < 0.3 else _insert(rng, text, rng.choice(("A", "b", "CALL", "O", "l", "x", "e", "FLOWERS")))
    if rng.random() < 0.04:
        table = rng.choice(_UNICODE_DIGITS)
        text = "".join(table[int(ch)] if ch.isdigit() and ch.isascii() and rng.random() < 0.9 else ch for ch in text)
        if rng.random() < 0.5:
            text = text.replace("+", "＋")
    if rng.random() < 0.04:
        text = rng.choice(("tel:", "TEL:", "tel: ", "tel://", "Tel.: ", "phone: ", "callto:", "sms:", "tel:+")) + text
    if rng.random() < 0.01:
        text += rng.choice((";phone-context=+1", ";phone-context=example.com", ";isub=12", ";foo=bar", "?x=1"))
    if rng.random() < 0.02:
        text = _insert(rng, text, rng.choice(_INVISIBLES + _CONTROLS + _EMOJI))
    if rng.random() < 0.02:
        text = rng.choice(("Phone: ", "mobile ", "cell: ", "(", "[", "\"", "'", "#", "*", "Call ")) + text + \
            rng.choice(("", ")", "]", "\"", "'", ".", " (mobile)", " - home", " please", "!"))
    if rng.random() < 0.06:
        text = rng.choice(("",) + _SPACES) + text + rng.choice(("",) + _SPACES)
    if rng.random() < 0.005:
        text = text * rng.randrange(2, 30)
    return text


def _phone_edge_cases() -> list[tuple[Any, str | None]]:
    values: list[Any] = [
        None, True, False, 0, 1, 2125550100, 12125550100, -2125550100, 10**30, 1.5, 2125550100.0,
        b"2125550100", ["2125550100"], "", " ", "+", "+1", "12345", "555-CALL-NOW", "1-800-FLOWERS", "+1 555 0100",
        "+15551234567", "+1 (415) 555-2671", "(415) 555-2671", "+1 (415) 555-2671 ext. 12", "415-555-2671 x12",
        "415-555-2671#12", "tel:+1-415-555-2671", "tel:+1-415-555-2671;ext=12", "+44 20 7946 0958",
        "020 7946 0958", "+49 30 12345678", "030 12345678", "+33 1 23 45 67 89", "01 23 45 67 89",
        "+91 98765 43210", "098765 43210", "+55 11 91234-5678", "(11) 91234-5678", "٠١٢٣٤٥٦٧٨٩",
        "+١ ٤١٥ ٥٥٥ ٢٦٧١", "＋１ ４１５ ５５５ ２６７１", "+1\u00a0415\u00a0555\u00a02671", "+1\x00415 555 2671",
        "+1 415 555 2671\u200b", "\u202e+1 415 555 2671", "0" * 20, "9" * 300, "+" + "1" * 17, "1" * 250,
        "+1 415 555 2671 ext. " + "1" * 20, "+800 1234 5678", "+808 12345678", "+870 773 111 632", "+979 123456789",
        "+882 3456 7890", "+883 5100 1234 0000", "+888 1234 5678", "+1 242 357 1234", "+1 787 555 1234",
    ]
    return [(value, region) for value in values for region in REGIONS]


def phones(count: int, seed: int = SEED) -> list[tuple[Any, str | None]]:
    """`count` messy (value, region) pairs for `normalize_phone(value, region)` (deterministic for a seed)."""
    rng = random.Random(seed)
    examples = _example_numbers()
    pool = PeoplePool()
    values: list[tuple[Any, str | None]] = _phone_edge_cases()
    while len(values) < count:
        if rng.random() < 0.015:  # hypothesis-like: short text over an alphabet of what breaks parsers
            alphabet = "0123456789+-(). extCALNOWflowers#;=:\u0661\uff11\u00a0\x00"
            text: Any = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
            home = None
        else:
            text, home = _phone_text(rng, examples, pool)
            text = _wrap_phone(rng, text)
        if rng.random() < 0.01 and isinstance(text, str) and text.isdigit() and text.isascii():
            text = int(text)
        roll = rng.random()
        region = home if roll < 0.35 and home in REGIONS else (
            rng.choice(_OTHER_REGIONS) if roll > 0.95 else rng.choice(REGIONS))
        values.append((text, region))
    return values[:count]
