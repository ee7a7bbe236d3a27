"""dlt's REST API source reading the AgentClara emulator into duckdb: extraction only (no CRM).

Run by bench/compare.py with the bench venv's Python (dlt is not installed in
the project's venv: it would move pinned shared dependencies), as

    .venv-bench/bin/python bench/dlt_runner.py AGENTCLARA_URL

It imports nothing from the project. Configured as a user would from dlt's
docs: bearer auth, offset paginator (limit 100, no total: it stops at the
first empty page), `data` as the data selector, dlt's own retries (429s
included). Prints one JSON line: {"wall_s", "peak_rss_mib", "rows"}.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

import dlt
from dlt.sources.rest_api import rest_api_source

KEY = "ac_sandbox_key"


def main(url: str) -> None:
    workdir = tempfile.mkdtemp(prefix="bench-dlt-")
    source = rest_api_source({
        "client": {
            "base_url": url,
            "auth": {"type": "bearer", "token": KEY},
            "paginator": {"type": "offset", "limit": 100, "offset_param": "offset", "limit_param": "limit",
                          "total_path": None},
        },
        "resources": [{"name": "contacts", "endpoint": {"path": "contacts", "data_selector": "data"}}],
    })
    pipeline = dlt.pipeline(pipeline_name="bench_compare", pipelines_dir=workdir,
                            destination=dlt.destinations.duckdb(f"{workdir}/contacts.duckdb"),
                            dataset_name="agentclara")
    started = time.monotonic()
    pipeline.run(source)
    wall = time.monotonic() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM contacts")[0][0]
    print(json.dumps({"wall_s": wall, "success": True, "rows": rows,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
