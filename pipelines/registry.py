"""The one list of the platforms the sync reads: adding a platform is one line here.

Everything keyed by source name derives from it: the source views and asset
factories (pipelines/sources.py, pipelines/assets/sources.py), the
historical-load and renormalize ops, the normalizer tables
(pipelines/steps/normalize.py), the resources (pipelines/resources.py) and
the run summary. Each entry is a platform's connector class, which carries
its spec (connectors/<name>/spec.py). Kept apart from pipelines/sources.py
so that the normalize step can read it without an import cycle.
"""

from __future__ import annotations

import os
from typing import Mapping

from connectors.agentclara import AgentClaraSource
from connectors.agentpro import AgentProSource
from connectors.chatloom import ChatloomSource
from connectors.clairo import ClairoSource
from connectors.declared import DeclaredSource
from connectors.spec import SourceSpec, StreamSpec

PLATFORMS: tuple[type[DeclaredSource], ...] = (AgentClaraSource, ClairoSource, AgentProSource, ChatloomSource)

SPECS: tuple[SourceSpec, ...] = tuple(platform.spec for platform in PLATFORMS)
CONNECTORS: dict[str, type[DeclaredSource]] = {platform.spec.name: platform for platform in PLATFORMS}

TRUE = frozenset({"1", "true", "yes", "on"})


def stream_on(stream: StreamSpec, environ: Mapping[str, str] = os.environ) -> bool:
    """Is `stream` read? Always without a flag; with one, when its variable is 1/true/yes/on now.

    Read when the step runs (never when the definitions load): setting the
    flag turns the stream on for the next run without a reload."""
    return stream.enabled_by is None or (environ.get(stream.enabled_by) or "").strip().lower() in TRUE
