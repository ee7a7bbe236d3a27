"""Appointments as Salesforce Events: the part of `SalesforceSink` the appointment push calls.

The Event path is the Task path (`SalesforceSink._upsert_keyed`: sObject
Collections upsert by an external id, settled per record, a stop keeping
what finished); what differs is the mapping (`events.py`) and the key field,
`appointment_external_id_field` (default Agent_Appointment_Id__c), checked by
`SalesforceSink.prepare` when the sink is built with `appointments=True`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from connectors.errors import ConfigError
from connectors.limits import Cut
from connectors.salesforce import events
from connectors.salesforce.mapping import MAX_LENGTH, external_id_problem
from connectors.salesforce.settings import SERVICE
from connectors.salesforce.settle import failure
from connectors.sink import SyncOutcome


class AppointmentWrites:
    """Mixed into SalesforceSink (which sets these attributes and the two methods below)."""

    appointments: bool = False
    appointment_external_id_field: str = events.DEFAULT_APPOINTMENT_EXTERNAL_ID_FIELD
    _prepared: bool = False
    _event_lengths: Mapping[str, int] = MAX_LENGTH

    def prepare(self, *, create: bool = True) -> None:  # pragma: no cover - SalesforceSink's
        raise NotImplementedError

    def _upsert_keyed(self, obj: str, key_field: str, items: Mapping[str, dict[str, Any]],
                      cuts: Mapping[str, tuple[Cut, ...]], outcomes: list[SyncOutcome]) -> list[SyncOutcome]:
        raise NotImplementedError  # pragma: no cover - SalesforceSink's

    def prepare_appointments(self, *, create: bool = True) -> None:
        """Check the org once (Event fields included): ConfigError naming every missing field, nothing written.

        `create` is the sink interface's; Salesforce set-up is never written by the sync, so it changes nothing.
        """
        if not self.appointments:
            raise ConfigError(SERVICE, "appointments are off: construct the sink with appointments=True")
        if not self._prepared:
            self.prepare()

    @staticmethod
    def appointment(appointment: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """The Event for an appointment, linked to the Lead/Contact `contact_id` (hashed for diffing)."""
        return events.appointment_event(appointment, who_id=contact_id)

    @staticmethod
    def appointment_input(appointment: Mapping[str, Any], contact_id: str | None,
                          crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_appointments` (the Event is keyed by its external id, not by `crm_id`)."""
        return events.appointment_event(appointment, who_id=contact_id)

    def upsert_appointments(self, items: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """Upsert one Event per appointment, keyed by `appointment_external_id_field`; outcomes by appointment key."""
        self.prepare_appointments()
        outcomes: list[SyncOutcome] = []
        records: dict[str, dict[str, Any]] = {}
        cuts: dict[str, tuple[Cut, ...]] = {}
        for event in items:
            key = str(event.get("appointment_key"))
            problem = external_id_problem(event.get("appointment_key"))
            if problem:
                outcomes.append(failure(key, "INVALID_EXTERNAL_ID", problem))
                continue
            if not event.get("who_id"):
                outcomes.append(failure(key, "NO_CONTACT", "no Salesforce Lead/Contact id for this appointment"))
                continue
            records.pop(key, None)
            records[key], cuts[key] = events.event_fields_and_cuts(
                event, key_field=self.appointment_external_id_field, lengths=self._event_lengths)
        return self._upsert_keyed(events.OBJECT, self.appointment_external_id_field, records, cuts, outcomes)
