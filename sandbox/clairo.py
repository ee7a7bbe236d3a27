"""Clairo emulator: agents, conversations and discovery briefs (seeds/clairo-api.txt).

Base path: routes are registered under `/api/v1` (as in production), so run
it with a plain `ServerThread(ClairoApp())` and point the client at
`server.url + "/api/v1"` (`ClairoApp.BASE_PATH`). Do not pass
`path_prefix="/api/v1"`: that strips the prefix and every route 404s.

Documented behaviour: Bearer keys starting `clr_`, the Max plan (403
otherwise), bare JSON bodies, errors `{"error": "..."}`, 1,000 requests per
minute per business with X-RateLimit-Limit/-Remaining/-Reset (unix time)
headers on every answered request of a known key. Where the docs are silent
(DESIGN.md): list `limit` default 50, values above 100 capped; `offset` is
honoured unless `honour_offset=False`, in which case the first page always
comes back, as a client must be able to detect. Lists are newest first.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.common import (
    Clock,
    HttpError,
    KeyedRateLimits,
    RateDecision,
    SourceApp,
    bearer_token,
    iso_ms,
    json_body,
    key_map,
    page_args,
)
from sandbox.http import Request, Response
from sandbox.seed import DEFAULT_SEED, PeoplePool, Person, render_email, render_name, render_phone

BASE_PATH = "/api/v1"
DEFAULT_KEY = "clr_sandbox_key"
AUTH_ERROR = "Missing or invalid Authorization header. Use: Bearer clr_..."

# Discovery agents ask different questions, so brief `answers` keys differ per
# agent. (key, role, question) with role telling the generator what to answer.
QUESTION_SETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "snake": (
        ("name", "name", "Hi! What's your name?"),
        ("email", "email", "What's the best email to reach you?"),
        ("phone", "phone", "And a phone number, in case email fails?"),
        ("company", "company", "Which company are you with?"),
        ("team_size", "team", "How many people are on your team?"),
        ("budget", "budget", "What's your monthly budget for this?"),
    ),
    "labels": (
        ("Full name", "name", "Could I get your full name?"),
        ("Email address", "email", "What email address should we use?"),
        ("Phone number", "phone", "What's a good phone number?"),
        ("Company name", "company", "What's the name of your company?"),
        ("What are you looking for?", "need", "What are you looking for?"),
        ("Monthly budget", "budget", "What is your monthly software budget?"),
    ),
    "work": (
        ("full_name", "name", "Welcome! Your full name, please?"),
        ("work_email", "email", "Your work email?"),
        ("company", "company", "Which organisation are you with?"),
        ("team_size", "team", "How large is the team that would use it?"),
        ("timeline", "timeline", "When are you hoping to go live?"),
    ),
}
AGENT_SPECS = (  # name, type, isActive, description, question set
    ("Support Bot", "SUPPORT", True, "Customer support agent", None),
    ("Lead Qualifier", "DISCOVERY", True, "Qualifies inbound leads from the website", "snake"),
    ("Website Discovery", "DISCOVERY", True, "Discovery chat on the pricing page", "labels"),
    ("After-hours Support", "SUPPORT", True, "Answers questions outside office hours", None),
    ("Enterprise Intake", "DISCOVERY", False, "Intake for enterprise prospects", "work"),
)
_NEEDS = ("AI chatbot for support", "a booking assistant", "lead qualification on our site", "after-hours phone answering", "help with onboarding")
_BUDGETS = ("$50-100/month", "€200", "under 1k", "not sure yet", "$500/mo", "depends on features")
_TEAMS = ("50", "about 10", "1-5", "200+", "just me", "12")
_TIMELINES = ("ASAP", "next month", "Q3", "this quarter", "no rush")
_SUPPORT_LINES = (
    ("What are your business hours?", "We are open Monday to Friday, 9am-6pm."),
    ("Do you ship to Canada?", "Yes, we ship to Canada within 5-7 business days."),
    ("How do I reset my password?", "Click 'Forgot password' on the login page and follow the email."),
    ("Can I change my plan later?", "Yes, you can upgrade or downgrade at any time from Settings."),
)


def cuid(rng: random.Random) -> str:
    """An id shaped like Clairo's (Prisma cuid): 'cm' + 23 base-36 characters."""
    return "cm" + "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(23))


def discovery_answers(person: Person, rng: random.Random, question_set: str, *, tidy: bool = False) -> dict[str, str]:
    """A brief's `answers`: flat {question key: string answer}, messy as people are.

    Skipped questions leave their key out; some people refuse ("prefer not to
    say"), type an email somewhere else (key "contact"), or mistype it.
    `tidy` forces a valid email and a phone (used for scripted overlaps).
    """
    answers: dict[str, str] = {}
    for key, role, _ in QUESTION_SETS[question_set]:
        roll = rng.random()
        if role == "name":
            value = render_name(person, rng) or person.first_name
        elif role == "email":
            if tidy:
                value = render_email(person, rng, invalid_rate=0.0)
            elif roll < 0.04:
                answers["contact"] = person.email  # right value, unexpected key
                continue
            elif roll < 0.09:
                continue
            elif roll < 0.12:
                value = "prefer not to say"
            else:
                value = render_email(person, rng, invalid_rate=0.05)
        elif role == "phone":
            if not tidy and roll < 0.35:
                continue
            value = "no thanks" if not tidy and roll < 0.38 else render_phone(person, rng, invalid_rate=0.0 if tidy else 0.02)
        elif role == "company":
            value = "n/a" if roll < 0.05 else "Self-employed" if roll < 0.08 else person.company
        elif role == "team":
            value = rng.choice(_TEAMS)
        elif role == "budget":
            value = rng.choice(_BUDGETS)
        elif role == "need":
            value = rng.choice(_NEEDS)
        else:
            value = rng.choice(_TIMELINES)
        answers[key] = value
    return answers


def brief_summary(person: Person, answers: dict[str, str]) -> str:
    """The free-text summary Clairo writes, e.g. 'John Smith, CEO of TechStart. ...'."""
    name = next((answers[k] for k in ("name", "Full name", "full_name") if answers.get(k)), "Unnamed lead")
    company = next((answers[k] for k in ("company", "Company name") if answers.get(k)), "an unnamed company")
    need = answers.get("What are you looking for?", "an AI assistant")
    budget = next((answers[k] for k in ("budget", "Monthly budget") if k in answers), "unknown")
    return f"{name}, {person.title} of {company}. Looking for {need}. Budget: {budget}."


@dataclass
class _Conversation:
    id: str
    agent_id: str
    status: str
    created: datetime
    updated: datetime
    messages: list[dict[str, Any]]
    progress: int = 0  # answers given, for discovery conversations

    def item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agentId": self.agent_id,
            "status": self.status,
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
        }


class ClairoApp(SourceApp):
    """The Clairo public API over a seeded, in-memory data set."""

    BASE_PATH = BASE_PATH

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | Mapping[str, str] | None = None,
        plan: str = "max",
        briefs: int = 80,
        conversations: int = 200,
        seed: int = DEFAULT_SEED,
        per_minute: int | None = 1000,
        honour_offset: bool = True,
        retry_after_header: bool = False,
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        self.keys = key_map(api_keys, DEFAULT_KEY, "biz_sandbox")
        for key in self.keys:
            if not key.startswith("clr_"):
                raise ValueError(f"Clairo keys start with clr_: {key!r}")
        self.plan = plan
        self.honour_offset = honour_offset
        self.retry_after_header = retry_after_header
        self.per_minute = per_minute
        self.clock = Clock(now)
        self.pool = PeoplePool(seed)
        self.limits = KeyedRateLimits([(per_minute, 60.0)])
        self._lock = threading.RLock()
        self._rng = self.pool.rng("clairo:live", 0)  # for records made after seeding
        self.agents: list[dict[str, Any]] = []
        self._conversations: dict[str, _Conversation] = {}
        self._briefs: dict[str, dict[str, Any]] = {}
        self._list_counts = {"conversations": 0, "briefs": 0}
        self._hooks: dict[tuple[str, int], list[Callable[[], object]]] = {}
        self._seed_data(briefs, max(conversations, briefs))

        p = self.BASE_PATH
        self.route("GET", f"{p}/agents", self._list_agents)
        self.route("GET", f"{p}/conversations", self._list_conversations)
        self.route("GET", f"{p}/conversations/{{conversation_id}}", self._get_conversation)
        self.route("GET", f"{p}/briefs", self._list_briefs)
        self.route("GET", f"{p}/briefs/{{brief_id}}", self._get_brief)
        self.route("POST", f"{p}/chat", self._chat)
        self.route("POST", f"{p}/discover", self._discover)

    # --- seeding ------------------------------------------------------------------------

    def _seed_data(self, briefs: int, conversations: int) -> None:
        rng = self.pool.rng("clairo:agents", 0)
        start = self.clock.start
        for k, (name, kind, active, description, questions) in enumerate(AGENT_SPECS):
            self.agents.append({
                "id": cuid(rng),
                "name": name,
                "type": kind,
                "isActive": active,
                "description": description,
                "createdAt": iso_ms(start - timedelta(days=400 - 30 * k, seconds=rng.randrange(86400))),
                "_questions": questions,
            })
        discovery = [a for a in self.agents if a["type"] == "DISCOVERY"]
        support = [a for a in self.agents if a["type"] == "SUPPORT"]
        # The first briefs cite regulars whom AgentClara knows by phone only.
        scripted = self.pool.phone_only_regulars(3)
        for j in range(briefs):
            rng = self.pool.rng("clairo:brief", j)
            if j < len(scripted):
                person_index, agent, tidy = scripted[j], discovery[j % 2], True
            else:
                person_index, agent, tidy = self.pool.platform_person("clairo", j), rng.choice(discovery), False
            started = start - timedelta(seconds=rng.randrange(3600, 90 * 86400))
            self._make_brief(self.pool.person(person_index), agent, started, rng, tidy=tidy)
        for k in range(conversations - briefs):
            rng = self.pool.rng("clairo:conversation", k)
            started = start - timedelta(seconds=rng.randrange(3600, 90 * 86400))
            if rng.random() < 0.7:
                self._make_support(rng.choice(support), started, rng)
            else:  # a discovery chat the visitor abandoned halfway
                person = self.pool.person(self.pool.platform_person("clairo", 100_000 + k))
                agent = rng.choice(discovery)
                answers = discovery_answers(person, rng, agent["_questions"])
                keep = dict(list(answers.items())[: rng.randint(1, 2)])
                conversation = self._discovery_conversation(agent, keep, started, rng)
                conversation.status = rng.choice(("ACTIVE", "ABANDONED"))

    def _discovery_conversation(self, agent: dict[str, Any], answers: dict[str, str], started: datetime, rng: random.Random) -> _Conversation:
        questions = {key: text for key, _, text in QUESTION_SETS[agent["_questions"]]}
        messages, moment = [], started
        for key, value in answers.items():
            for role, content in (("assistant", questions.get(key, "Anything else we should know?")), ("user", value)):
                messages.append({"role": role, "content": content, "createdAt": iso_ms(moment)})
                moment += timedelta(seconds=rng.randint(5, 90), milliseconds=rng.randrange(1000))
        conversation = _Conversation(cuid(rng), agent["id"], "ACTIVE", started, moment, messages, len(answers))
        self._conversations[conversation.id] = conversation
        return conversation

    def _make_brief(self, person: Person, agent: dict[str, Any], started: datetime, rng: random.Random, *, tidy: bool = False) -> dict[str, Any]:
        answers = discovery_answers(person, rng, agent["_questions"], tidy=tidy)
        conversation = self._discovery_conversation(agent, answers, started, rng)
        conversation.status = "COMPLETED"
        brief = {
            "id": cuid(rng),
            "agentId": agent["id"],
            "conversationId": conversation.id,
            "summary": brief_summary(person, answers),
            "createdAt": iso_ms(conversation.updated),
            "_created": conversation.updated,
            "_answers": answers,
        }
        self._briefs[brief["id"]] = brief
        return brief

    def _make_support(self, agent: dict[str, Any], started: datetime, rng: random.Random) -> _Conversation:
        messages, moment = [], started
        for question, reply in rng.sample(_SUPPORT_LINES, rng.randint(1, 3)):
            for role, content in (("user", question), ("assistant", reply)):
                messages.append({"role": role, "content": content, "createdAt": iso_ms(moment)})
                moment += timedelta(seconds=rng.randint(2, 120), milliseconds=rng.randrange(1000))
        status = "ACTIVE" if self.clock.start - started < timedelta(days=1) else rng.choice(("ACTIVE", "CLOSED", "CLOSED"))
        conversation = _Conversation(cuid(rng), agent["id"], status, started, moment, messages)
        self._conversations[conversation.id] = conversation
        return conversation

    # --- service behaviour ----------------------------------------------------------------

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"error": message})

    def throttled_response(self) -> Response:
        decision = RateDecision(False, self.per_minute, 0, 60.0)
        return Response(429, {"error": "Too many requests"}, self._limit_headers(decision))

    def _limit_headers(self, decision: RateDecision) -> dict[str, str]:
        if decision.limit is None:
            return {}
        headers = {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(decision.reset_epoch()),
        }
        if self.retry_after_header and not decision.allowed:
            headers["Retry-After"] = str(max(1, round(decision.reset_s + 0.5)))
        return headers

    def dispatch(self, request: Request) -> Response:
        key = bearer_token(request)
        if key is None or not key.startswith("clr_") or key not in self.keys:
            return self.error_response(401, AUTH_ERROR)
        decision = self.limits.hit(self.keys[key])
        if not decision.allowed:
            response = Response(429, {"error": "Too many requests"})
        elif self.plan != "max":
            response = self.error_response(403, "API access requires the Max plan")
        else:
            response = super().dispatch(request)
        response.headers.update(self._limit_headers(decision))
        return response

    def _page(self, request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit, offset = page_args(request.query, default_limit=50, max_limit=100)
        if not self.honour_offset:
            offset = 0
        return items[offset: offset + limit]

    def _after_list(self, stream: str) -> None:
        self._list_counts[stream] += 1
        for fn in self._hooks.pop((stream, self._list_counts[stream]), []):
            fn()

    # --- routes ------------------------------------------------------------------------------

    def _list_agents(self, request: Request) -> Response:
        with self._lock:
            agents = [{k: v for k, v in a.items() if not k.startswith("_")} for a in self.agents]
        return Response(200, {"agents": agents})

    def _sorted_conversations(self, agent_id: str | None) -> list[_Conversation]:
        found = [c for c in self._conversations.values() if agent_id is None or c.agent_id == agent_id]
        return sorted(found, key=lambda c: (c.created, c.id), reverse=True)

    def _list_conversations(self, request: Request) -> Response:
        agent_id = request.query.get("agentId") or None
        with self._lock:
            items = [c.item() for c in self._sorted_conversations(agent_id)]
            page = self._page(request, items)
            self._after_list("conversations")
        return Response(200, {"conversations": page})

    def _conversation_body(self, conversation_id: str) -> dict[str, Any]:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            raise HttpError(404, "Conversation not found")
        return {**conversation.item(), "messages": [dict(m) for m in conversation.messages]}

    def _get_conversation(self, request: Request) -> Response:
        with self._lock:
            return Response(200, self._conversation_body(request.params["conversation_id"]))

    def _list_briefs(self, request: Request) -> Response:
        agent_id = request.query.get("agentId") or None
        with self._lock:
            briefs = sorted(self._briefs.values(), key=lambda b: (b["_created"], b["id"]), reverse=True)
            items = [
                {k: v for k, v in b.items() if not k.startswith("_")}
                for b in briefs if agent_id is None or b["agentId"] == agent_id
            ]
            page = self._page(request, items)
            self._after_list("briefs")
        return Response(200, {"briefs": page})

    def _get_brief(self, request: Request) -> Response:
        with self._lock:
            brief = self._briefs.get(request.params["brief_id"])
            if brief is None:
                raise HttpError(404, "Brief not found")
            body = {k: v for k, v in brief.items() if not k.startswith("_")}
            body["answers"] = dict(brief["_answers"])
            conversation = self._conversation_body(brief["conversationId"])
            body["conversation"] = {"id": conversation["id"], "messages": conversation["messages"]}
        return Response(200, body)

    def _agent_for(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        agent_id, message = body.get("agentId"), body.get("message")
        if not agent_id or not isinstance(message, str) or not message.strip():
            raise HttpError(400, "agentId and message are required")
        agent = next((a for a in self.agents if a["id"] == agent_id), None)
        if agent is None:
            raise HttpError(404, "Agent not found")
        if agent["type"] != kind:
            raise HttpError(400, f"Agent is not a {kind} agent")
        return agent

    def _continue(self, body: dict[str, Any], agent: dict[str, Any]) -> _Conversation:
        conversation_id = body.get("conversationId")
        if conversation_id:
            conversation = self._conversations.get(conversation_id)
            if conversation is None or conversation.agent_id != agent["id"]:
                raise HttpError(404, "Conversation not found")
            return conversation
        now = self.clock.now()
        conversation = _Conversation(cuid(self._rng), agent["id"], "ACTIVE", now, now, [])
        self._conversations[conversation.id] = conversation
        return conversation

    def _say(self, conversation: _Conversation, role: str, content: str) -> None:
        now = self.clock.now()
        conversation.messages.append({"role": role, "content": content, "createdAt": iso_ms(now)})
        conversation.updated = now

    def _chat(self, request: Request) -> Response:
        body = json_body(request)
        with self._lock:
            agent = self._agent_for(body, "SUPPORT")
            conversation = self._continue(body, agent)
            self._say(conversation, "user", body["message"])
            reply = "We are open Monday to Friday, 9am-6pm." if "hour" in body["message"].lower() else "Thanks for your message! How else can I help?"
            self._say(conversation, "assistant", reply)
        return Response(200, {"reply": reply, "conversationId": conversation.id})

    def _discover(self, request: Request) -> Response:
        """Each message answers the agent's next question; the last one completes
        the conversation and files a brief with the answers."""
        body = json_body(request)
        with self._lock:
            agent = self._agent_for(body, "DISCOVERY")
            conversation = self._continue(body, agent)
            questions = QUESTION_SETS[agent["_questions"]]
            if conversation.status == "COMPLETED":
                raise HttpError(400, "Discovery already completed")
            if not conversation.messages:
                self._say(conversation, "assistant", questions[0][2])
            self._say(conversation, "user", body["message"])
            conversation.progress += 1
            done = conversation.progress >= len(questions)
            if done:
                reply = "Thanks! We have everything we need and will be in touch shortly."
                conversation.status = "COMPLETED"
            else:
                reply = questions[conversation.progress][2]
            self._say(conversation, "assistant", reply)
            if done:
                answers = {
                    key: m["content"]
                    for (key, _, _), m in zip(questions, [m for m in conversation.messages if m["role"] == "user"])
                }
                self._file_brief(agent, conversation, answers)
        return Response(200, {
            "reply": reply,
            "conversationId": conversation.id,
            "progress": round(100 * conversation.progress / len(questions)),
            "completed": done,
        })

    def _file_brief(self, agent: dict[str, Any], conversation: _Conversation, answers: dict[str, str]) -> str:
        name = next((answers[k] for k in ("name", "Full name", "full_name") if answers.get(k)), "Unnamed lead")
        company = next((answers[k] for k in ("company", "Company name") if answers.get(k)), "an unnamed company")
        brief = {
            "id": cuid(self._rng),
            "agentId": agent["id"],
            "conversationId": conversation.id,
            "summary": f"{name} from {company}.",
            "createdAt": iso_ms(conversation.updated),
            "_created": conversation.updated,
            "_answers": answers,
        }
        self._briefs[brief["id"]] = brief
        self._restamp_newest(brief)
        return brief["id"]

    # --- mutation API for tests and benchmarks ------------------------------------------------

    def add_briefs(self, n: int = 1, *, person_indices: Iterable[int] | None = None) -> list[str]:
        """File `n` new briefs (newest first in lists), from completed discovery chats."""
        with self._lock:
            discovery = [a for a in self.agents if a["type"] == "DISCOVERY" and a["isActive"]]
            people = list(person_indices) if person_indices is not None else [
                self.pool.platform_person("clairo", 500_000 + len(self._briefs) + k) for k in range(n)
            ]
            ids = []
            for person_index in people:
                agent = self._rng.choice(discovery)
                brief = self._make_brief(self.pool.person(person_index), agent, self.clock.now(), self._rng)
                self._restamp_newest(brief)
                ids.append(brief["id"])
            return ids

    def _restamp_newest(self, brief: dict[str, Any]) -> None:
        """Make a brief filed after seeding strictly the newest, so lists show
        live briefs first in the order they were filed."""
        newest = max((b["_created"] for b in self._briefs.values() if b is not brief), default=brief["_created"])
        if brief["_created"] <= newest:
            brief["_created"] = newest + timedelta(milliseconds=1)
        brief["createdAt"] = iso_ms(brief["_created"])

    def add_message(self, conversation_id: str, content: str, *, role: str = "user") -> None:
        """Append a message to a conversation (bumps its updatedAt)."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                raise KeyError(conversation_id)
            self._say(conversation, role, content)

    def on_request(self, k: int, fn: Callable[[], object], *, stream: str = "briefs") -> None:
        """Run `fn` right after the k-th (1-based) list request of `stream`
        ("briefs" or "conversations") is built; later requests see the change."""
        if stream not in self._list_counts:
            raise ValueError(f"unknown stream {stream!r}")
        with self._lock:
            self._hooks.setdefault((stream, k), []).append(fn)

    def brief_ids(self) -> Iterator[str]:
        """Brief ids in list order (newest first), a snapshot."""
        with self._lock:
            briefs = sorted(self._briefs.values(), key=lambda b: (b["_created"], b["id"]), reverse=True)
        return iter([b["id"] for b in briefs])

    def conversation_ids(self, agent_id: str | None = None) -> Iterator[str]:
        """Conversation ids in list order (newest first), a snapshot."""
        with self._lock:
            return iter([c.id for c in self._sorted_conversations(agent_id)])

    def brief_answers(self, brief_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._briefs[brief_id]["_answers"])
