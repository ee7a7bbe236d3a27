"""What one run did, per source, for the persons and per target, read back
from the store's run history.

Every stage records its figures under its step name (`reporting.record`),
the same names in `daily_sync` and `historical_load`: a source's read asset,
`<source>_contacts` and `<source>_conversations`, `persons`,
`<target>_contacts` and `<target>_activities`. `summarize(store,
run_id)` turns those rows into lines a person reads: the `sync_report`
asset shows them and fails the run on them, and `make demo` prints them.

The persons and CRM steps' rows hold typed figures under stable keys
(pipelines/figures.py); words are made here, never read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pipelines.assets.crm import TARGETS, activity_step, target_step
from pipelines.reporting import md_table
from pipelines.sources import SOURCES, Source
from pipelines.state import StateStore
from pipelines.steps.activities import days_shown
from pipelines.steps.persons import duplicates_shown, left_behind_shown

STATUS_WORDS = {"success": "ok", "failed": "FAILED", "skipped": "skipped", "not run": "not run"}


@dataclass(frozen=True)
class Line:
    """One source, the persons, or one target, in this run."""

    kind: str  # "source", "people", "target"
    name: str
    step: str
    status: str  # "success", "failed", "skipped", "not run"
    figures: list[str] = field(default_factory=list)  # first line, then details
    error: str | None = None
    incomplete: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    lines: list[Line]

    @property
    def failures(self) -> list[Line]:
        return [line for line in self.lines if line.status == "failed"]

    @property
    def incomplete(self) -> list[Line]:
        return [line for line in self.lines if line.incomplete]

    def text(self) -> list[str]:
        """The summary as printed: one line per source, persons, target (details indented)."""
        out = []
        for line in self.lines:
            head, *rest = line.figures or [""]
            out.append(f"  {line.name:<11} {STATUS_WORDS.get(line.status, line.status):<8} {head}".rstrip())
            out.extend(f"  {'':<11} {'':<8} {more}" for more in rest)
        return out

    def as_metadata(self) -> dict[str, Any]:
        rows = [{"name": line.name, "kind": line.kind, "status": STATUS_WORDS.get(line.status, line.status),
                 "figures": "; ".join(line.figures)} for line in self.lines]
        return {
            "summary": md_table(rows, ["name", "kind", "status", "figures"], width=1000),
            "failed": [line.name for line in self.failures],
            "incomplete listings": {line.name: dict(line.incomplete) for line in self.incomplete},
            "sources synced": [line.name for line in self.lines if line.kind == "source" and line.status == "success"],
        }

    def failure_message(self) -> str:
        failed = self.failures
        what = ", ".join(line.name for line in failed)
        head = (f"{len(failed)} of this run's sources and targets failed ({what}); "
                "everything else was synced.")
        return "\n".join([head, *(f"- {line.name} ({line.step}): {line.error}" for line in failed)])


def summarize(store: StateStore, run_id: str) -> RunSummary:
    steps = {row["step"]: row for row in store.run_history(run_id)}
    lines = [_source_line(source, steps) for source in SOURCES]
    persons = steps.get("persons")
    lines.append(Line("people", "persons", "persons", persons["status"] if persons else "not run",
                      _persons_figures(persons["stats"] or {}) if persons else []))
    for target in TARGETS:
        row = steps.get(target_step(target))
        line = _step_line("target", target, target_step(target), row, _target_figures)
        lines.append(_with_activities(line, steps.get(activity_step(target))))
    return RunSummary(run_id, lines)


def _with_activities(line: Line, row: Mapping[str, Any] | None) -> Line:
    """The target's line with its activities (conversations) under the contacts."""
    if row is None or line.status != "success":
        return line
    stats = row["stats"] or {}
    if row["status"] == "failed":
        error = stats.get("error")
        return Line(line.kind, line.name, activity_step(line.name), "failed",
                    [*line.figures, f"activities: {error}"], error=error)
    if row["status"] == "skipped":
        return line
    return Line(line.kind, line.name, line.step, line.status, [*line.figures, _activity_figures(stats)])


def _source_line(source: Source, steps: Mapping[str, Mapping[str, Any]]) -> Line:
    read = steps.get(source.read_asset)
    if read is None:
        return Line("source", source.name, source.read_asset, "not run")
    stats = read["stats"] or {}
    if read["status"] == "skipped":
        return Line("source", source.name, source.read_asset, "skipped", [str(stats.get("skipped", ""))])
    figures = []
    if read["status"] == "failed":
        figures.append(str(stats.get("error")))
        if stats.get("records read"):
            figures.append("read before the failure, kept: " + _read_figures(source, stats))
    else:
        figures.append(_read_figures(source, stats))
    contacts = steps.get(source.contacts_asset) if source.contacts_asset else None
    if contacts:
        figures.append(_contacts_figures(contacts["stats"] or {}))
    conversations = steps.get(source.conversations_asset) if source.conversations_asset else None
    if conversations:
        figures.append(_contacts_figures(conversations["stats"] or {}, "conversations"))
    incomplete = dict(stats.get("truncated") or {})
    if incomplete:
        figures.append("INCOMPLETE, may have missed records: "
                       + "; ".join(f"{stream}: {why}" for stream, why in incomplete.items()))
    return Line("source", source.name, source.read_asset, read["status"], figures,
                error=stats.get("error"), incomplete=incomplete)


def _step_line(kind: str, name: str, step: str, row: Mapping[str, Any] | None, figures: Any) -> Line:
    if row is None:
        return Line(kind, name, step, "not run")
    stats = row["stats"] or {}
    if row["status"] == "skipped":
        return Line(kind, name, step, "skipped", [str(stats.get("skipped", ""))])
    if row["status"] == "failed":
        return Line(kind, name, step, "failed", [str(stats.get("error"))], error=stats.get("error"))
    return Line(kind, name, step, row["status"], figures(stats))


def _read_figures(source: Source, stats: Mapping[str, Any]) -> str:
    streams = ", ".join(f"{stream} {_n(stats[f'{stream} read'])}" for stream in source.streams
                        if f"{stream} read" in stats)
    details = sum(int(stats.get(f"{stream} details fetched", 0)) for stream in source.streams)
    extra = f", {_n(details)} details fetched" if details else ""
    return (f"{streams} read ({_n(stats.get('new or changed', 0))} new or changed{extra}; "
            f"requests {_n(stats.get('requests', 0))}, retries {_n(stats.get('retries', 0))}, "
            f"429s {_n(stats.get('throttled', 0))})")


def _contacts_figures(stats: Mapping[str, Any], what: str = "contacts") -> str:
    reasons = stats.get("quarantine reasons") or {}
    why = " (" + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + ")" if reasons else ""
    return f"{what}: {_n(stats.get('normalized', 0))} normalized, {_n(stats.get('quarantined', 0))} quarantined{why}"


def _persons_figures(stats: Mapping[str, Any]) -> list[str]:
    """The persons step's figures (pipelines.steps.persons.PersonStats.figures) in words."""
    figures = [f"{_n(stats.get('records', 0))} contacts merged into {_n(stats.get('persons', 0))} persons "
               f"({_n(stats.get('changed', 0))} changed)"]
    if "linked" in stats:
        figures.append(f"conversations: {_n(stats['linked'])} linked to their person, "
                       f"{_n(stats.get('unlinked', 0))} unlinked")
    figures += _crm_leftovers(left_behind_shown(stats.get("left_behind") or []),
                              "CRM records left behind, their person no longer exists (merge or delete them in the CRM)")
    figures += _crm_leftovers(duplicates_shown(stats.get("duplicates") or []), "CRM duplicates to merge by hand")
    return figures


LEFTOVERS_SHOWN = 10


def _crm_leftovers(items: list[str] | None, title: str) -> list[str]:
    """A persons-step listing of CRM records the sync no longer manages: a head line, then a few ids."""
    if not items:
        return []
    more = len(items) - LEFTOVERS_SHOWN
    tail = [f"  ... and {_n(more)} more (the persons step's metadata lists them all)"] if more > 0 else []
    return [f"{title}: {_n(len(items))}", *(f"  {item}" for item in items[:LEFTOVERS_SHOWN]), *tail]


def _verb(stats: Mapping[str, Any]) -> str:
    return "would be " if stats.get("dry_run") else ""


def _activity_figures(stats: Mapping[str, Any]) -> str:
    """The activity push's figures (pipelines.steps.activities.ActivityStats.figures) in words."""
    verb = _verb(stats)
    waiting = []
    if stats.get("unlinked"):
        waiting.append(f"{_n(stats['unlinked'])} unlinked")
    if stats.get("waiting_for_contact"):
        waiting.append(f"{_n(stats['waiting_for_contact'])} waiting for their contact")
    more = f" ({', '.join(waiting)})" if waiting else ""
    return (f"activities {days_shown(stats.get('days'))}: {verb}created {_n(stats.get('created', 0))}, "
            f"{verb}updated {_n(stats.get('updated', 0))}, unchanged {_n(stats.get('unchanged', 0))}, "
            f"failed {_n(stats.get('failed', 0))}{more}")


def _target_figures(stats: Mapping[str, Any]) -> list[str]:
    """The contact push's figures (pipelines.steps.push.PushStats.figures) in words."""
    verb = _verb(stats)
    figures = [f"{verb}created {_n(stats.get('created', 0))}, {verb}updated {_n(stats.get('updated', 0))}, "
               f"unchanged {_n(stats.get('unchanged', 0))}, failed {_n(stats.get('failed', 0))}"]
    if stats.get("errors"):
        figures.append(", ".join(f"{k}: {v}" for k, v in sorted(stats["errors"].items())))
    if stats.get("stopped"):
        figures.append(f"stopped early, progress kept: {stats['stopped']}")
    return figures + _mapping_figures(stats)


PREVIEW_SHOWN = 10


def _mapping_figures(stats: Mapping[str, Any]) -> list[str]:
    """With a mapping file: who the mode skipped, and in a dry run what would change (a few lines)."""
    figures = []
    skipped = [(stats.get("skipped_not_in_crm") or 0, "not in CRM"),
               (stats.get("skipped_already_in_crm") or 0, "already in CRM")]
    if any(n for n, _ in skipped):
        figures.append("skipped: " + ", ".join(f"{_n(n)} {why}" for n, why in skipped if n))
    preview = stats.get("preview") or []
    if preview:
        figures.append(f"would change {_n(stats.get('persons_changing', 0))} persons, for example:")
        figures += [f"  {line}" for line in preview[:PREVIEW_SHOWN]]
    return figures


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

