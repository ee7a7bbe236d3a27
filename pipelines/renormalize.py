"""`renormalize`: rebuild every canonical record and person from the kept raw payloads.

No source is called: the raw table keeps every payload as it was read
(DESIGN.md, "Raw payloads are kept, so a new schema version can re-normalize
history without calling the source again"). Use it after a schema version
change (contact v1 -> v2: raw rows whose normalized_version is not the
current one are picked up anyway, so no reset is needed) or after a
normalizer fix that kept the version (`force: true` resets the
normalization marks of the chosen sources first).

Ops: `reset_marks` (config `force`, `sources`: which sources, default
all) -> `renormalize_<source>` (its contacts and conversations, the same
normalize code the daily assets run, on every core unless
SYNC_NORMALIZE_CORES says otherwise) -> `renormalize_persons` (identities,
conversation links, roll-ups). Nothing is pushed: the next `daily_sync`
sends the persons whose CRM properties changed, and a backfill of a range
of days sends those days' activities.

    dagster job execute -m pipelines -j renormalize
    python -m pipelines.renormalize [--force] [--source agentclara ...]
"""

import argparse
import os
import sys
from typing import Any, Sequence

import dagster as dg

from pipelines.assets.people import locked_rebuild
from pipelines.reporting import record
from pipelines.resources import StateStoreResource
from pipelines.sources import SOURCES, Source, normalize_source
from pipelines.steps.persons import LABELS as PERSON_LABELS

RENORMALIZED = tuple(source for source in SOURCES if source.contact_stream or source.conversation_stream)


class RenormalizeConfig(dg.Config):
    force: bool = False  # reset the normalization marks first (a normalizer changed, its version did not)
    sources: list[str] = []  # which sources; empty: all


@dg.op(out=dg.Out(list))
def reset_marks(context: dg.OpExecutionContext, config: RenormalizeConfig, state: StateStoreResource) -> list[str]:
    """The sources to re-normalize; with `force`, their raw rows are marked for it."""
    known = {source.name for source in RENORMALIZED}
    unknown = sorted(set(config.sources) - known)
    if unknown:
        raise dg.Failure(description=f"unknown source(s) {unknown}; known: {sorted(known)}")
    chosen = [source for source in RENORMALIZED if not config.sources or source.name in config.sources]
    if config.force:
        store = state.store()
        for source in chosen:
            streams = [s for s in (source.contact_stream, source.conversation_stream) if s]
            reset = store.reset_normalization(source.name, streams=streams)
            context.log.info(f"{source.label}: {reset} raw payloads marked for re-normalization")
    return [source.name for source in chosen]


def renormalize_op(source: Source) -> dg.OpDefinition:
    @dg.op(
        name=f"renormalize_{source.name}",
        out=dg.Out(dg.Nothing),
        required_resource_keys={"state", "settings"},
        description=f"Normalize {source.label}'s kept raw payloads that are not current (no request to "
        f"{source.label}).",
    )
    def _renormalize(context: dg.OpExecutionContext, chosen: list) -> None:
        if source.name not in chosen:
            context.log.info(f"{source.label} not chosen: left as it is")
            return
        settings = context.resources.settings
        normalize_source(context, context.resources.state.store(), source, settings.default_region,
                         cores=settings.cores())

    return _renormalize


@dg.op(ins={"normalized": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def renormalize_persons(context: dg.OpExecutionContext, state: StateStoreResource) -> None:
    """Identities, conversation links and roll-ups, from the re-normalized records."""
    store = state.store()
    stats = locked_rebuild(context, store)
    record(context, store, "persons", stats)
    context.add_output_metadata(stats.as_metadata())


renormalize_ops = [renormalize_op(source) for source in RENORMALIZED]


@dg.job(name="renormalize", description=__doc__)
def renormalize() -> None:
    chosen = reset_marks()
    renormalize_persons(normalized=[op(chosen) for op in renormalize_ops])


def run(*, force: bool = False, sources: Sequence[str] = (),
        instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Execute `renormalize` in this process against the state store the environment names."""
    from pipelines.definitions import build_definitions

    job = build_definitions(os.environ).resolve_job_def("renormalize")
    config: dict[str, Any] = {
        "ops": {"reset_marks": {"config": {"force": force, "sources": list(sources)}}},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},  # progress lines, not every engine event
    }
    if instance is None:
        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    return job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="reset the normalization marks first")
    parser.add_argument("--source", action="append", default=[], choices=[s.name for s in RENORMALIZED],
                        help="only this source (repeatable); default: every source")
    args = parser.parse_args(argv)
    result = run(force=args.force, sources=args.source)
    store = StateStoreResource().store()
    print(f"renormalize: {'succeeded' if result.success else 'FAILED'} (run {result.run_id[:8]}), state {store!r}")
    for row in store.run_history(result.run_id):
        print(f"  {row['step']:<24} {row['status']:<8} {_figures(row['stats'] or {})}")
    return 0 if result.success else 1


def _figures(stats: dict[str, Any]) -> str:
    """A step's figures in words: its normalize counts, or the persons step's (by their keys, labelled here)."""
    keep = [(key, key) for key in ("normalized", "quarantined")]
    keep += [(key, PERSON_LABELS[key]) for key in ("persons", "changed", "linked", "unlinked")]
    return ", ".join(f"{label} {stats[key]}" for key, label in keep if key in stats)


if __name__ == "__main__":
    sys.exit(main())
