"""HubSpot: everything about it in one package.

- `mapping.py`: person -> contact properties, conversation -> engagement (pure);
- `transport.py`: the vendor client with the shared retry classification;
- `settle.py`: a batch reply -> one outcome per input, and bisect-on-400 (pure);
- `writes.py`: the three batch writes (upsert, update by id, create);
- `engagements.py`: notes, communications and meetings, never duplicated;
- `meetings.py`: appointment -> meeting (pure);
- `current.py`: the property list and batch reads of current values, for the field mapping;
- `sink.py`: `HubSpotSink`, what the sync engine calls.
"""

from connectors.hubspot.settle import describe_error
from connectors.hubspot.sink import MAX_BATCH, HubSpotSink
from connectors.hubspot.transport import DEFAULT_BASE_URL, SERVICE

__all__ = ["DEFAULT_BASE_URL", "MAX_BATCH", "SERVICE", "HubSpotSink", "describe_error"]
