"""The project's jobs as module-level factories, for executors that cross processes.

Dagster's multiprocess executor starts every step in a fresh process, which
rebuilds the job by importing this module and calling the factory again
(`dg.reconstructable(daily_sync)`). Each factory builds the definitions from
`os.environ` at call time, so a test sets the sandbox's URLs and keys with
`monkeypatch.setenv` and every step process, which inherits the environment,
points its resources at the same emulators.
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.definitions import build_definitions


def daily_sync() -> dg.JobDefinition:
    return build_definitions(os.environ).resolve_job_def("daily_sync")


def historical_load() -> dg.JobDefinition:
    return build_definitions(os.environ).resolve_job_def("historical_load")
