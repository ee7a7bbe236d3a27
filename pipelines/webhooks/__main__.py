"""`python -m pipelines.webhooks`: the receiver on uvicorn, 127.0.0.1:SYNC_WEBHOOK_PORT (default 8787).

The state store is SYNC_DATABASE_URL (the default SQLite file otherwise),
opened (and upgraded) before the port is bound, so /healthz answering means
events can be stored. uvicorn handles SIGTERM and SIGINT: it stops
accepting, finishes the requests in flight, then the app's shutdown
disposes of the store.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import uvicorn

from connectors.errors import ConfigError
from pipelines.state import StateStore, default_database_url
from pipelines.webhooks.app import PATH, build_app
from pipelines.webhooks.config import HOST, ReceiverSettings

log = logging.getLogger("pipelines.webhooks")


def main() -> int:
    """Serve until SIGTERM/SIGINT; 2 on a configuration error (said on stderr, no secret in it)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ReceiverSettings.from_env()
    except ConfigError as exc:
        print(f"pipelines.webhooks: {exc}", file=sys.stderr)
        return 2
    store = StateStore(default_database_url())
    log.info("receiving on http://%s:%d%s, state %r", HOST, settings.port, PATH, store)
    config = uvicorn.Config(build_app(store, secret=settings.secret), host=HOST, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on")
    # uvicorn stops gracefully on SIGTERM/SIGINT, restores these handlers, then raises the
    # signal again: with them the process then exits 0 instead of dying of the signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    uvicorn.Server(config).run()
    return 0


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
