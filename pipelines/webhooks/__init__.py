"""Near-real-time AgentClara: a webhook receiver, its inbox, and the sensor and job that sync it.

- `python -m pipelines.webhooks` (`app.py`, `__main__.py`): `POST /webhooks/agentclara`
  checks the signature (`signature.py`), validates the event (`events.py`)
  and writes it to the state store's `webhook_inbox` (`inbox.py`) before it
  answers 2xx. It never calls a CRM or the source.
- `agentclara_webhook_sensor` (`sensor.py`) turns pending inbox events into
  `webhook_sync` runs (`job.py`), which land what the events carry
  (`land.py`) and push it with the daily sync's own steps.

The assumptions about AgentClara's webhooks (payload shapes, signature
scheme) live in `events.py` and `signature.py`, one place each
(DESIGN.md, "Near-real-time: AgentClara webhooks").
"""
