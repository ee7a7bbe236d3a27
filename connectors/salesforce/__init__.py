"""Salesforce: everything about it in one package.

- `mapping.py`: person -> Lead/Contact fields, conversation -> Task (pure);
- `events.py`: appointment -> Event (pure); `appointments.py`: the sink's Event writes;
- `settings.py`: how to reach one org (`SalesforceSettings`);
- `transport.py`: simple-salesforce with the shared retry classification;
- `settle.py`: collection results and bulk result sets -> outcomes (pure);
- `org.py`: whether the org is set up, from its describe (pure);
- `bulk.py`: Bulk API 2.0 upsert jobs;
- `current.py`: the describe and SOQL reads of current values, for the field mapping;
- `sink.py`: `SalesforceSink`, what the sync engine calls.
"""

from connectors.salesforce.settings import SERVICE, SalesforceSettings, settings_from_env
from connectors.salesforce.sink import SalesforceSink
from connectors.salesforce.transport import RetryPolicy, connect, translate

__all__ = ["SERVICE", "RetryPolicy", "SalesforceSettings", "SalesforceSink", "connect", "settings_from_env",
           "translate"]
