"""Deterministic, realistically messy people for the source emulators.

Why: the sync must survive what real platforms hand over (odd casing, broken
emails, phones in every format, the same customer on several platforms), so
the emulators serve data generated here rather than tidy fixtures.

Every value is derived from (seed, kind, index), never from shared mutable
state: a record is rebuilt on demand, so a million AgentClara contacts cost no
memory, and two runs with the same seed see exactly the same data.

A `Person` is the truth about a human (always a valid email, and a phone
libphonenumber says is valid for its country: `_phone_for`). What a
platform *shows* of them is decided when a record is rendered: hidden fields,
odd formats, invalid values. Persons 0..SHARED_PEOPLE-1 are "regulars" who
are AgentClara contacts 0..SHARED_PEOPLE-1 and also turn up on Clairo and
AgentPro; every platform also has people of its own.
"""

from __future__ import annotations

import random
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sandbox.common import UTC, iso_z

DEFAULT_SEED = 20240315
SHARED_PEOPLE = 200
# Person-index ranges of people seen on one platform only.
PLATFORM_PEOPLE_BASE = {"clairo": 1_000_000_000, "agentpro": 2_000_000_000, "inserted": 3_000_000_000}

_MASK = (1 << 64) - 1


class _Missing:
    """Marks a field a record leaves out entirely (as opposed to null)."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


def _mix64(x: int) -> int:
    """splitmix64 finalizer: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def stable_hash(seed: int, kind: str, index: int) -> int:
    """Hash of (seed, kind, index), identical across processes (no str hash)."""
    return _mix64(_mix64((seed & _MASK) ^ zlib.crc32(kind.encode())) ^ (index & _MASK))


def rng_for(seed: int, kind: str, index: int) -> random.Random:
    """A private RNG for one record, so records never depend on each other."""
    return random.Random(stable_hash(seed, kind, index))


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE36_PAIRS = tuple(a + b for a in _BASE36 for b in _BASE36)


class IdCodec:
    """Bijection between an integer index and an opaque id like 'cust_k3j9x0a2'.

    Why: ids look like the real services' ids, yet a GET by id maps back to
    the index without a lookup table (needed at a million records).
    """

    _MOD = 36**8

    def __init__(self, prefix: str, salt: int) -> None:
        self.prefix = prefix
        self._a = (_mix64(salt) % (self._MOD // 6)) * 6 + 1  # coprime with 2 and 3
        self._b = _mix64(salt + 1) % self._MOD
        self._a_inv = pow(self._a, -1, self._MOD)

    def encode(self, index: int) -> str:
        n = (index * self._a + self._b) % self._MOD
        n, d = divmod(n, 1296)
        n, c = divmod(n, 1296)
        a, b = divmod(n, 1296)
        pairs = _BASE36_PAIRS
        return self.prefix + pairs[a] + pairs[b] + pairs[c] + pairs[d]

    def decode(self, value: str) -> int | None:
        body = value[len(self.prefix):] if value.startswith(self.prefix) else ""
        if len(body) != 8 or any(c not in _BASE36 for c in body):
            return None
        return ((int(body, 36) - self._b) * self._a_inv) % self._MOD


FIRST_NAMES = (
    "John", "Mary", "James", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa",
    "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Priya", "Wei",
    "Aisha", "Omar", "Hiroshi", "Yuki", "Olga", "Dmitri", "Fatima", "Kwame",
    "Liam", "Emma", "Noah", "Olivia", "Ava", "Ethan", "Sofia", "Lucas", "Mia", "Mateo",
)
UNICODE_FIRST_NAMES = (
    "José", "Zoë", "Renée", "François", "Søren", "Björn", "Chloé", "Iñaki",
    "Łukasz", "Ana-María", "Jürgen", "Anaïs", "Siobhán", "Þóra", "Ağca",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Nguyen", "Kim",
    "Patel", "Kowalski", "Dubois", "Rossi", "Schmidt", "Tanaka", "Okafor", "Ivanova",
    "O'Brien", "McDonald", "Smith-Jones", "D'Angelo", "van der Berg", "MacLeod",
)
UNICODE_LAST_NAMES = (
    "Núñez", "Müller", "García", "Ødegaard", "Brontë", "Çelik", "Żółć", "Šimková",
    "Løvås", "Fernández", "Gómez", "Dvořák", "Ó Súilleabháin",
)
COMPANIES = (
    "Acme Dental", "Northwind Traders", "Bluebird Realty", "Summit Physio", "Lakeside Vets",
    "Brightpath Tutoring", "Cedar & Stone Law", "Harbor Auto Repair", "Green Leaf Landscaping",
    "Pixel Forge Studio", "TechStart", "Oakridge Plumbing", "Maple Street Bakery",
    "Riverside Clinic", "Nimbus Analytics", "Copperline HVAC", "Sunrise Yoga",
)
TITLES = ("CEO", "Founder", "Office Manager", "Head of Operations", "Marketing Lead", "Owner", "CTO")
PERSONAL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example.org")

# (country, share per mille, E.164 country code)
_COUNTRIES = (("US", 720, "1"), ("CA", 60, "1"), ("GB", 100, "44"), ("AU", 50, "61"), ("DE", 40, "49"), ("FR", 30, "33"))
_US_AREAS = (
    "212", "415", "312", "617", "303", "512", "206", "404", "305", "702",
    "503", "614", "718", "213", "646", "720", "615", "919", "480", "602",
)
_CA_AREAS = ("416", "604", "613", "514")


@dataclass(frozen=True)
class Person:
    """The truth about one human; platforms show parts of it, messily."""

    index: int
    first_name: str
    last_name: str
    email: str  # canonical: lower-case, valid
    phone: str  # canonical E.164, valid per libphonenumber
    phone_parts: tuple[str, ...]  # (country code, national groups...) for formatting
    country: str
    company: str
    title: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email_local(self) -> str:
        return self.email.split("@", 1)[0]


_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "þ": "th", "Þ": "Th", "đ": "d"})


@lru_cache(maxsize=4096)
def ascii_slug(text: str) -> str:
    """'Ó Súilleabháin' -> 'osuilleabhain': how people turn names into mailboxes."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _permute(x: int, space: int) -> int:
    """A bijection of range(space) that hides the order of x (cycle-walking).

    Each round (xorshift, odd multiply, xorshift on k bits) is invertible on
    k-bit values; repeating until the value falls inside `space` keeps it a
    bijection of range(space). Expected rounds: under two.
    """
    bits = max(space - 1, 1).bit_length()
    mask = (1 << bits) - 1
    half = max(bits // 2, 1)
    while True:
        x ^= x >> half
        x = (x * 0x2545F4914F6CDD1D) & mask
        x ^= x >> half
        if x < space:
            return x


def _phone_for(index: int, country: str) -> tuple[str, ...]:
    """A valid number for `country`, unique per person index within the country."""
    def slot(space: int) -> int:
        return _permute((index + 0x5DEECE66D) % space, space)

    if country in ("US", "CA"):
        areas = _US_AREAS if country == "US" else _CA_AREAS
        n = slot(len(areas) * 8_000_000)
        area, rest = divmod(n, 8_000_000)
        exchange, line = divmod(rest + 2_000_000, 10_000)
        return ("1", areas[area], f"{exchange:03d}", f"{line:04d}")
    if country == "GB":
        n = slot(2 * 10**7)
        lead, rest = divmod(n, 10**7)
        digits = ("7", "3")[lead] + f"{rest:07d}"
        return ("44", "20", digits[:4], digits[4:])
    if country == "AU":
        n = slot(4 * 10**7)
        digits = "4" + f"{n // 10**7}" + f"{n % 10**7:07d}"
        return ("61", digits[:3], digits[3:6], digits[6:])
    if country == "DE":
        digits = f"{slot(10**8):08d}"
        return ("49", "30", digits[:4], digits[4:])
    n = slot(3 * 10**7)
    lead, rest = divmod(n, 10**7)
    digits = ("61", "62", "76")[lead] + f"{rest:07d}"
    return ("33", digits[0], digits[1:3], digits[3:5], digits[5:7], digits[7:9])


class PeoplePool:
    """The population every emulator draws from, keyed by person index."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.person = lru_cache(maxsize=16384)(self._make_person)

    def rng(self, kind: str, index: int) -> random.Random:
        return rng_for(self.seed, kind, index)

    def hash(self, kind: str, index: int) -> int:
        return stable_hash(self.seed, kind, index)

    def _make_person(self, index: int) -> Person:
        rng = self.rng("person", index)
        first = rng.choice(UNICODE_FIRST_NAMES if rng.random() < 0.12 else FIRST_NAMES)
        last = rng.choice(UNICODE_LAST_NAMES if rng.random() < 0.12 else LAST_NAMES)
        company = rng.choice(COMPANIES)
        f, l = ascii_slug(first), ascii_slug(last)
        local = rng.choice((f"{f}.{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}{l[0]}", f"{l}.{f}"))
        domain = (
            ascii_slug(company) + ".example" if rng.random() < 0.3 else rng.choice(PERSONAL_DOMAINS)
        )
        # The index in the mailbox keeps emails unique: two different people
        # never share one unless a scenario below says so on purpose.
        tag = str(index % 1_000_000_000) + ("", "a", "b", "c", "d")[min(index // 1_000_000_000, 4)]
        email = f"{local}{tag}@{domain}"
        roll, country, code = rng.randrange(1000), "US", "1"
        for country, share, code in _COUNTRIES:
            if roll < share:
                break
            roll -= share
        parts = _phone_for(index, country)
        return Person(
            index=index,
            first_name=first,
            last_name=last,
            email=email,
            phone="+" + "".join(parts),
            phone_parts=parts,
            country=country,
            company=company,
            title=rng.choice(TITLES),
        )

    def platform_person(self, platform: str, j: int, share: float = 0.4) -> int:
        """Person index behind record `j` of `platform`: a regular with
        probability `share` (so the same customer shows up on AgentClara too),
        otherwise someone only this platform knows."""
        h = self.hash(platform + ":who", j)
        if h % 1000 < share * 1000:
            return (h >> 12) % SHARED_PEOPLE
        return PLATFORM_PEOPLE_BASE[platform] + j

    def phone_only_regulars(self, count: int) -> list[int]:
        """Regulars whose AgentClara contact shows a phone but no email.

        Clairo briefs cite these people by email, so the sync has to join an
        SMS-only contact to an emailed lead through the phone number.
        """
        probe = AgentClaraSeed(self, contacts=SHARED_PEOPLE, conversations=0, now=datetime(2024, 1, 1, tzinfo=UTC))
        found = []
        for i in range(SHARED_PEOPLE):
            record = probe.contact_at(i)
            if probe.scenario(i) == "plain" and not record.get("email") and record.get("phone"):
                found.append(i)
                if len(found) == count:
                    break
        return found


# --- rendering: what a platform shows of a person -------------------------------------


def render_name(person: Person, rng: random.Random) -> str:
    """The name as typed into some form: mostly fine, sometimes not."""
    first, last = person.first_name, person.last_name
    roll = rng.random()
    if roll < 0.78:
        return f"{first} {last}"
    if roll < 0.82:
        return f"{last.upper()}, {first.upper()}"
    if roll < 0.86:
        return f"{first} {last}".lower()
    if roll < 0.89:
        return first
    if roll < 0.91:
        return f"{first} {last}".upper()
    if roll < 0.93:
        return f"  {first}   {last} "
    if roll < 0.95:
        return f"{last}, {first}"
    if roll < 0.97:
        return rng.choice(("Dr. ", "Mr ", "Ms. ", "Mrs ")) + f"{first} {last}" + rng.choice(("", "", " Jr.", " III"))
    if roll < 0.99:
        return f"{first} {last[0]}."
    return ""


def invalid_email(person: Person, rng: random.Random) -> str:
    """Something a person typed into an email field that is not an email."""
    local, domain = person.email.split("@", 1)
    return rng.choice((
        f"{local}@",
        "n/a",
        f"{local} at {domain}",
        f"{local}@@{domain}",
        f"{local}@{domain.split('.')[0]}",
        "none",
        f"{local}.{domain}",
        "-",
    ))


def render_email(person: Person, rng: random.Random, *, invalid_rate: float = 0.03) -> str:
    """The email as stored by a platform: case and whitespace vary, some are broken."""
    roll = rng.random()
    if roll < invalid_rate:
        return invalid_email(person, rng)
    roll = rng.random()
    email = person.email
    if roll < 0.06:
        local, domain = email.split("@", 1)
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if roll < 0.08:
        return email.upper()
    if roll < 0.11:
        return rng.choice((f" {email}", f"{email} ", f"  {email}\t", f"{email}\n"))
    return email


def format_phone(person: Person, style: int) -> str:
    """One of the ways people write their number (style modulo the choices)."""
    cc, *groups = person.phone_parts
    if cc == "1":
        area, exchange, line = groups
        styles = (
            person.phone,
            f"({area}) {exchange}-{line}",
            f"{area}.{exchange}.{line}",
            f"{area}-{exchange}-{line}",
            f"+1 {area} {exchange} {line}",
            f"1-{area}-{exchange}-{line}",
            f"{area}{exchange}{line}",
            f"+1 ({area}) {exchange}-{line}",
        )
    else:
        national = " ".join(groups)
        styles = (
            person.phone,
            f"+{cc} {national}",
            f"00{cc} {national}",
            f"+{cc}-{'-'.join(groups)}",
            f"+{cc} (0){national}",
            f"0{national}",  # national format: only parseable knowing the country
        )
    return styles[style % len(styles)]


# What people type when they will not give their number: dirty data on purpose.
# None is an identity (docs/identity.md): the letters placeholder and the
# fictional +1 555 numbers of the platforms' docs look like numbers, and an
# older rule merged everyone who typed the same one into one person.
PLACEHOLDER_PHONES = ("12345", "555-CALL-NOW", "0000000000", "n/a", "+1 555 0100", "+1 (555) 123-4567")


def render_phone(person: Person, rng: random.Random, *, invalid_rate: float = 0.015) -> str:
    """The phone as stored by a platform: E.164 half the time, anything else otherwise."""
    if rng.random() < invalid_rate:
        return rng.choice(PLACEHOLDER_PHONES)
    if rng.random() < 0.5:
        return person.phone
    return format_phone(person, rng.randrange(1, 8))


def render_timestamp(moment: datetime, rng: random.Random) -> str:
    """ISO-8601 as different code paths of one service write it: Z, millis, offsets."""
    roll = rng.random()
    if roll < 0.85:
        return iso_z(moment)
    if roll < 0.92:
        plain = moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()
        return f"{plain}.{rng.randrange(1000):03d}Z"
    hours, minutes = rng.choice(((2, 0), (-5, 0), (5, 30), (1, 0), (-8, 0)))
    offset = timezone(timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes))
    return moment.astimezone(offset).replace(microsecond=0).isoformat()


_EXTRA_FIELDS = (
    lambda rng: {"source": rng.choice(("web_widget", "sms", "import", "zapier"))},
    lambda rng: {"custom_fields": {"loyalty_id": f"L-{rng.randrange(10**5):05d}", "preferred_time": "mornings"}},
    lambda rng: {"lifetime_value": round(rng.uniform(0, 2500), 2)},
    lambda rng: {"last_seen_channel": rng.choice(("sms", "email", "voice"))},
    lambda rng: {"_score": round(rng.random(), 3), "opted_out": rng.random() < 0.2},
)


def extra_fields(rng: random.Random, rate: float) -> dict[str, Any]:
    """Fields the docs never mention, which a robust client must carry along."""
    return _EXTRA_FIELDS[rng.randrange(len(_EXTRA_FIELDS))](rng) if rng.random() < rate else {}


# --- AgentClara ------------------------------------------------------------------------

CONTACT_IDS = IdCodec("cust_", salt=101)
CONVERSATION_IDS = IdCodec("conv_", salt=202)
INSERTED_BASE = 1 << 40  # indices of records created after seeding
CHANNELS = ("sms", "email", "whatsapp", "voice", "instagram", "facebook")
_CHANNEL_CUTS = (35, 55, 68, 78, 89, 100)  # cumulative per cent
TAGS = ("vip", "lead", "customer", "newsletter", "sms-opt-in", "returning", "do-not-call", "new-patient")

_TOPICS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Appointment Question", (
        ("customer", "Hi, can I move my appointment to {day}?"),
        ("assistant", "Of course! What time works best on {day}?"),
        ("customer", "Around {time} if possible."),
        ("assistant", "Done. You're booked for {day} at {time}. See you then, {first}!"),
        ("customer", "Thanks so much"),
    )),
    ("Pricing", (
        ("customer", "How much is a standard consultation?"),
        ("assistant", "A standard consultation is $120 and takes about 45 minutes."),
        ("customer", "Do you take insurance?"),
        ("assistant", "We accept most major plans. Can I get an email to send details to?"),
        ("customer", "Sure, it's {email}"),
        ("assistant", "Sent! Anything else I can help with?"),
    )),
    ("Opening hours", (
        ("customer", "r u open saturday"),
        ("assistant", "Yes, we're open Saturdays 9am to 1pm."),
        ("customer", "ok great"),
    )),
    ("Order status", (
        ("customer", "Where's my order? It's been a week."),
        ("assistant", "Sorry about the wait! Could you share your order number?"),
        ("customer", "#{order}"),
        ("assistant", "It shipped yesterday and should arrive by {day}."),
    )),
    ("Cancellation", (
        ("customer", "I need to cancel for {day}, something came up"),
        ("assistant", "No problem, I've cancelled it. Would you like to rebook?"),
        ("customer", "Not right now, I'll call back. My number is {phone}"),
        ("assistant", "Noted. Talk soon!"),
    )),
    ("Missed call", (
        ("assistant", "Hi, this is Clara from the front desk. Sorry we missed your call, how can I help?"),
        ("customer", "Hey, wanted to ask about teeth whitening"),
        ("assistant", "Happy to help! Whitening starts at $299. Want me to book a free assessment?"),
        ("customer", "yes please, {day} {time}"),
        ("assistant", "Booked for {day} at {time}."),
    )),
    ("Quote request", (
        ("customer", "Can I get a quote for {company}? We're about 12 people."),
        ("assistant", "Absolutely. Who should I address the quote to?"),
        ("customer", "{name}, {email}"),
        ("assistant", "Thanks {first}, the quote is on its way."),
    )),
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_TIMES = ("9am", "10:30", "noon", "2pm", "3:15pm", "5pm")


@dataclass(frozen=True)
class ConversationHeader:
    """What filtering needs, computed without building the conversation."""

    customer: int  # base contact index
    channel: str
    status: str
    started: datetime


class AgentClaraSeed:
    """AgentClara's contacts and conversations as pure functions of their index.

    Contacts 0..contacts-1 are created over the two years before `now`, in
    index order (so created_at ascending is index order). Conversations
    0..conversations-1 started over the 90 days before `now`, newest first
    (so index order is the documented list order).
    """

    CONTACT_SPAN = timedelta(days=730)
    CONVERSATION_SPAN = timedelta(days=90)

    def __init__(self, pool: PeoplePool, *, contacts: int, conversations: int, now: datetime) -> None:
        self.pool = pool
        self.contacts = contacts
        self.conversations = conversations
        self.now = now
        self.contact_step = self.CONTACT_SPAN / max(contacts, 1)
        self.first_created = now - self.CONTACT_SPAN - timedelta(days=1)
        self.conversation_step = self.CONVERSATION_SPAN / max(conversations, 1)

    # Scripted cases, one of each in every block of 100 contacts, at positions
    # shifted per block. Offsets are relative to the block's shift r.
    _SCENARIOS = {4: "dup_email_first", 10: "dup_email", 20: "shared_phone_a", 23: "shared_phone_b", 27: "shared_phone_no_email", 35: "no_contact"}

    def scenario(self, i: int) -> str:
        """Which scripted case contact `i` is, or 'plain'.

        dup_email_first / dup_email: one person on two records 6 apart, the
        second with the email in other casing or padded with spaces.
        shared_phone_a/_b: two different emailed people with one phone.
        shared_phone_no_email: no email, and the phone of a and b.
        no_contact: neither a valid email nor a valid phone.
        """
        if i >= INSERTED_BASE:
            return "plain"
        block, pos = divmod(i, 100)
        shift = self.pool.hash("ac:block", block) % 8
        return self._SCENARIOS.get(pos - shift, "plain")

    def created_at(self, i: int) -> datetime:
        """Creation time of base contact `i` (strictly increasing in i)."""
        frac = (self.pool.hash("ac:created", i) % 900) / 1000
        return (self.first_created + self.contact_step * (i + frac)).replace(microsecond=0)

    def person_index(self, i: int, scenario: str | None = None) -> int:
        """Whose record contact `i` is (dup_email repeats contact i-6's person)."""
        if i >= INSERTED_BASE:
            return PLATFORM_PEOPLE_BASE["inserted"] + (i - INSERTED_BASE)
        scenario = scenario if scenario is not None else self.scenario(i)
        return i - 6 if scenario == "dup_email" else i

    def contact_at(self, i: int, created: datetime | None = None) -> dict[str, Any]:
        """The contact record with index `i`, exactly as GET /contacts returns it."""
        rng = self.pool.rng("ac:contact", i)
        scenario = self.scenario(i)
        person = self.pool.person(self.person_index(i, scenario))
        record: dict[str, Any] = {"id": CONTACT_IDS.encode(i)}

        roll = rng.random()
        if roll < 0.02:
            record["name"] = None
        elif roll < 0.99:  # else (1%) no name key at all
            record["name"] = render_name(person, rng)

        email: Any = _MISSING
        phone: Any = _MISSING
        if scenario in ("dup_email_first", "dup_email", "shared_phone_a", "shared_phone_b"):
            email = render_email(person, rng, invalid_rate=0.0)
            if scenario == "dup_email" and rng.random() < 0.5:
                email = email.upper() if email == person.email else f" {person.email.title()} "
            phone = render_phone(person, rng, invalid_rate=0.0)
            if scenario == "shared_phone_b":
                phone = format_phone(self.pool.person(i - 3), rng.randrange(8))
        elif scenario == "shared_phone_no_email":
            email = rng.choice((None, _MISSING, ""))
            phone = format_phone(self.pool.person(i - 7), rng.randrange(1, 8))
        elif scenario == "no_contact":
            email = rng.choice((None, _MISSING, invalid_email(person, rng)))
            phone = rng.choice((None, _MISSING, "12345", "n/a", "000"))
        else:
            roll = rng.random()
            if roll < 0.80:
                email = render_email(person, rng)
            elif roll < 0.93:
                email = None
            elif roll < 0.97:
                email = _MISSING
            else:
                email = ""
            show_phone = 0.97 if email in (None, _MISSING, "") else 0.6
            roll = rng.random()
            if roll < show_phone:
                phone = render_phone(person, rng)
            else:
                phone = None if roll < show_phone + (1 - show_phone) * 0.8 else _MISSING
        if email is not _MISSING:
            record["email"] = email
        if phone is not _MISSING:
            record["phone"] = phone

        roll = rng.random()
        if roll < 0.05:
            record["tags"] = None
        elif roll < 0.97:
            record["tags"] = rng.sample(TAGS, rng.choice((0, 0, 1, 1, 1, 2, 3)))

        created = created if created is not None else self.created_at(i)
        updated = created
        roll = rng.random()
        if roll < 0.3 and created < self.now:
            updated = created + (self.now - created) * rng.random()
        if rng.random() > 0.003:  # rarely, no created_at at all
            record["created_at"] = render_timestamp(created, rng)
        roll = rng.random()
        if roll < 0.02:
            record["updated_at"] = None
        elif roll >= 0.03:
            record["updated_at"] = render_timestamp(updated.replace(microsecond=0), rng)
        record.update(extra_fields(rng, 0.05))
        return record

    def conversation_header(self, j: int) -> ConversationHeader:
        """Customer, channel, status and start of base conversation `j`, cheaply."""
        h = self.pool.hash("ac:conv", j)
        percent = h % 100
        channel = next(c for c, cut in zip(CHANNELS, _CHANNEL_CUTS) if percent < cut)
        frac = ((h >> 8) % 900) / 1000
        # Two hours of headroom so even the newest thread's replies are in the past.
        latest = self.now - timedelta(hours=2)
        started = (latest - self.conversation_step * (j + frac)).replace(microsecond=0)
        roll = (h >> 20) % 100
        if self.now - started < timedelta(days=3):
            status = "open" if roll < 70 else "resolved"
        else:
            status = "resolved" if roll < 60 else "closed" if roll < 90 else "open"
        customer = (h >> 32) % self.contacts if self.contacts else 0
        return ConversationHeader(customer, channel, status, started)

    def conversation_at(self, j: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(list item without last_message/unread, messages) of base conversation `j`."""
        header = self.conversation_header(j)
        rng = self.pool.rng("ac:conversation", j)
        contact = self.contact_at(header.customer)
        person = self.pool.person(self.person_index(header.customer))
        name = contact.get("name")
        email = contact.get("email")
        phone = contact.get("phone")
        channel = header.channel
        # The channel's own address is always known to the platform, whatever
        # the contact record says; other fields follow the contact.
        if channel in ("sms", "voice", "whatsapp"):
            phone = person.phone
            email = email if rng.random() < 0.3 else None
        elif channel == "email":
            email = person.email if rng.random() < 0.8 else render_email(person, rng, invalid_rate=0.0)
            phone = phone if rng.random() < 0.4 else None
        else:
            if rng.random() < 0.4:
                name = "@" + ascii_slug(person.first_name) + "." + ascii_slug(person.last_name)
            email = email if rng.random() < 0.5 else None
            phone = None
        subject, script = _TOPICS[rng.randrange(len(_TOPICS))]
        if channel == "voice":
            subject, script = _TOPICS[5]
        item: dict[str, Any] = {
            "id": CONVERSATION_IDS.encode(j),
            "customer_id": contact["id"],
            "customer_name": name,
            "customer_email": email,
            "customer_phone": phone,
            "channel": channel,
            "subject": subject if rng.random() > 0.03 else None,
            "timestamp": iso_z(header.started),
            "status": header.status,
        }
        if rng.random() < 0.6:
            item["tags"] = contact.get("tags") or []
        item.update(extra_fields(rng, 0.04))
        values = {
            "first": person.first_name, "name": person.full_name, "email": person.email,
            "phone": format_phone(person, rng.randrange(8)), "company": person.company,
            "day": rng.choice(_DAYS), "time": rng.choice(_TIMES), "order": rng.randrange(10000, 99999),
        }
        count = rng.randint(2, len(script))
        lines = [(sender, text.format(**values)) for sender, text in script[:count]]
        if rng.random() < 0.05:
            lines.insert(1, ("agent", f"Hi {person.first_name}, this is Sam from the front desk, jumping in here."))
        moment = header.started
        messages = []
        for k, (sender, text) in enumerate(lines, start=1):
            messages.append({
                "id": f"msg_{item['id'][5:]}_{k:02d}",
                "sender": sender,
                "content": text,
                "timestamp": iso_z(moment),
            })
            moment += timedelta(seconds=rng.randint(20, 600))
        return item, messages
