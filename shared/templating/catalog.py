"""The event-type catalogue served by `GET /api/v4/workflows/eventtypes`, with Resgrid's variable names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.enums import EventType

DATA_TYPES = frozenset({"string", "int", "bool", "datetime", "decimal", "double", "long", "array"})

_Spec = tuple[str, str, str]  # (name without its root, data type, description)


@dataclass(frozen=True)
class TemplateVariable:
    """One variable a template can use, e.g. `call.priority_text`."""

    name: str
    data_type: str
    description: str
    is_common: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "DataType": self.data_type,
            "Description": self.description,
            "IsCommon": self.is_common,
        }


@dataclass(frozen=True)
class EventTypeDescriptor:
    """An event type with the variables its templates can use (common ones first)."""

    value: int
    name: str
    display_name: str
    description: str
    variables: tuple[TemplateVariable, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "Value": self.value,
            "Name": self.name,
            "DisplayName": self.display_name,
            "Description": self.description,
            "Variables": [variable.to_json() for variable in self.variables],
        }


def _root(root: str, specs: list[_Spec], *, common: bool = False) -> tuple[TemplateVariable, ...]:
    return tuple(TemplateVariable(f"{root}.{name}", kind, text, common) for name, kind, text in specs)


def _address(what: str) -> list[_Spec]:
    return [
        ("address.street", "string", f"{what} street address"),
        ("address.city", "string", f"{what} city"),
        ("address.state", "string", f"{what} state or province"),
        ("address.postal_code", "string", f"{what} postal code"),
        ("address.country", "string", f"{what} country"),
    ]


COMMON_VARIABLES = (
    _root(
        "department",
        [
            ("id", "int", "Department ID"),
            ("name", "string", "Department name"),
            ("code", "string", "Department code (4 characters)"),
            ("type", "string", "Department type, e.g. Fire or EMS"),
            ("time_zone", "string", "Department time zone"),
            ("use_24_hour_time", "bool", "Whether the department uses 24-hour time"),
            ("created_on", "datetime", "When the department was created (UTC)"),
            ("phone_number", "string", "Department phone number (text-to-call number)"),
            *_address("Department"),
            ("address.full", "string", "Department address on one line"),
        ],
        common=True,
    )
    + _root(
        "timestamp",
        [
            ("utc_now", "datetime", "Time the workflow ran, in UTC (ISO 8601)"),
            ("department_now", "datetime", "Time the workflow ran, in the department's time zone (ISO 8601)"),
            ("date", "string", "Date in the department's time zone (yyyy-MM-dd)"),
            ("time", "string", "Time of day in the department's time zone (HH:mm:ss)"),
            ("day_of_week", "string", "Day of the week in the department's time zone, e.g. Monday"),
        ],
        common=True,
    )
    + _root(
        "user",
        [
            ("id", "string", "ID of the user who triggered the event"),
            ("first_name", "string", "First name of the user who triggered the event"),
            ("last_name", "string", "Last name of the user who triggered the event"),
            ("full_name", "string", "Full name (first and last) of the user who triggered the event"),
            ("email", "string", "Email address of the user who triggered the event"),
            ("mobile_number", "string", "Mobile phone number of the user who triggered the event"),
            ("home_number", "string", "Home phone number of the user who triggered the event"),
            ("identification_number", "string", "Identification number of the user who triggered the event"),
            ("username", "string", "Username of the user who triggered the event"),
            ("time_zone", "string", "Time zone of the user who triggered the event"),
        ],
        common=True,
    )
    + _root(
        "event",
        [
            ("id", "string", "ID of the event that started the run"),
            ("type", "string", "Event type name, e.g. CallAdded"),
            ("type_value", "int", "Event type number"),
            ("occurred_on", "datetime", "When the event happened (UTC)"),
        ],
        common=True,
    )
)

_CALL = _root(
    "call",
    [
        ("id", "int", "Call ID"),
        ("number", "string", "Call number"),
        ("name", "string", "Call name/title"),
        ("nature", "string", "Nature of the call"),
        ("notes", "string", "Call notes"),
        ("address", "string", "Call address"),
        ("geo_location", "string", "Call location as latitude,longitude"),
        ("type", "string", "Call type"),
        ("incident_number", "string", "Incident number"),
        ("reference_number", "string", "Reference number"),
        ("map_page", "string", "Map page or grid"),
        ("priority", "int", "Priority (0 Low, 1 Medium, 2 High, 3 Emergency)"),
        ("priority_text", "string", "Priority name, e.g. Emergency"),
        ("is_critical", "bool", "Whether the call is critical"),
        ("state", "int", "State (0 Active, 1 Closed, 2 Cancelled, 3 Unfounded)"),
        ("state_text", "string", "State name, e.g. Active"),
        ("source", "int", "How the call was created"),
        ("external_id", "string", "ID of the call in an external system"),
        ("logged_on", "datetime", "When the call was logged (UTC)"),
        ("closed_on", "datetime", "When the call was closed (UTC); empty while it is open"),
        ("completed_notes", "string", "Notes entered when the call was closed"),
        ("contact_name", "string", "Name of the contact for the call"),
        ("contact_number", "string", "Phone number of the contact for the call"),
        ("w3w", "string", "what3words address"),
        ("dispatch_count", "int", "Number of times the call was dispatched"),
        ("dispatch_on", "datetime", "When the call was (or will be) dispatched (UTC)"),
        ("form_data", "string", "Call form data (JSON text)"),
        ("is_deleted", "bool", "Whether the call was deleted"),
        ("deleted_reason", "string", "Why the call was deleted"),
        (
            "dispatches",
            "array",
            "Dispatched personnel: user_id, first_name, last_name, full_name, email, mobile_number, "
            "identification_number, group_id, group_name, role_names, roles, dispatch_count, dispatched_on",
        ),
        (
            "unit_dispatches",
            "array",
            "Dispatched units: unit_id, unit_name, unit_type, vin, plate_number, station_group_id, "
            "dispatch_count, dispatched_on",
        ),
        (
            "group_dispatches",
            "array",
            "Dispatched groups: group_id, group_name, group_type, dispatch_email, latitude, longitude, "
            "dispatch_count, dispatched_on",
        ),
        (
            "role_dispatches",
            "array",
            "Dispatched roles: role_id, role_name, role_description, dispatch_count, dispatched_on",
        ),
        ("notes_list", "array", "Call notes: note, source, timestamp, user_id"),
        ("contacts", "array", "Call contacts: contact_id, contact_type (Primary or Additional)"),
    ],
)

_UNIT_SPECS: list[_Spec] = [
    ("id", "int", "Unit ID"),
    ("name", "string", "Unit name"),
    ("type", "string", "Unit type"),
    ("vin", "string", "Vehicle identification number"),
    ("plate_number", "string", "License plate number"),
    ("station_group_id", "int", "ID of the unit's station group"),
]

_GROUP_SPECS: list[_Spec] = [
    ("id", "int", "Group ID"),
    ("name", "string", "Group name"),
    ("type", "int", "Group type (1 Station, 2 Organizational)"),
    ("dispatch_email", "string", "Group dispatch email address"),
    ("message_email", "string", "Group message email address"),
    ("latitude", "string", "Group latitude"),
    ("longitude", "string", "Group longitude"),
    ("what3words", "string", "Group what3words address"),
    *_address("Group"),
]

_CALENDAR = _root(
    "calendar",
    [
        ("id", "int", "Calendar item ID"),
        ("title", "string", "Title"),
        ("description", "string", "Description"),
        ("location", "string", "Location"),
        ("start", "datetime", "Start (UTC)"),
        ("end", "datetime", "End (UTC)"),
        ("is_all_day", "bool", "Whether the item lasts all day"),
        ("item_type", "int", "Calendar item type"),
        ("signup_type", "int", "Signup type (0 None, 1 RSVP)"),
        ("is_public", "bool", "Whether the item is public"),
    ],
)

_SHIFT = _root(
    "shift",
    [
        ("id", "int", "Shift ID"),
        ("name", "string", "Shift name"),
        ("code", "string", "Shift code"),
        ("schedule_type", "int", "Schedule type"),
        ("assignment_type", "int", "Assignment type"),
        ("color", "string", "Shift color"),
        ("start_day", "datetime", "First day of the shift"),
        ("start_time", "string", "Start time of day"),
        ("end_time", "string", "End time of day"),
        ("hours", "int", "Length in hours"),
        ("department_number", "string", "Department number"),
    ],
)

_TRAINING = _root(
    "training",
    [
        ("id", "int", "Training ID"),
        ("name", "string", "Training name"),
        ("description", "string", "Description"),
        ("training_text", "string", "Training text"),
        ("minimum_score", "double", "Minimum passing score"),
        ("created_on", "datetime", "When the training was created (UTC)"),
        ("to_be_completed_by", "datetime", "Completion deadline (UTC)"),
    ],
)

_EVENT_VARIABLES: dict[EventType, tuple[TemplateVariable, ...]] = {
    EventType.CallAdded: _CALL,
    EventType.CallUpdated: _CALL,
    EventType.CallClosed: _CALL,
    EventType.UnitStatusChanged: _root(
        "unit_status",
        [
            ("id", "int", "Unit state ID"),
            ("state", "int", "New unit state"),
            ("state_text", "string", "New unit state name, e.g. Responding"),
            ("timestamp", "datetime", "When the state changed (UTC)"),
            ("note", "string", "Note entered with the state"),
            ("latitude", "decimal", "Latitude reported with the state"),
            ("longitude", "decimal", "Longitude reported with the state"),
            ("destination_id", "int", "ID of the destination (call or station)"),
        ],
    )
    + _root("unit", _UNIT_SPECS)
    + _root(
        "previous_unit_status",
        [
            ("state", "int", "Previous unit state"),
            ("state_text", "string", "Previous unit state name"),
            ("timestamp", "datetime", "When the previous state was set (UTC)"),
        ],
    ),
    EventType.PersonnelStaffingChanged: _root(
        "staffing",
        [
            ("id", "int", "User state ID"),
            ("state", "int", "New staffing level"),
            ("state_text", "string", "New staffing level name, e.g. Available"),
            ("timestamp", "datetime", "When the staffing changed (UTC)"),
            ("note", "string", "Note entered with the staffing"),
        ],
    )
    + _root(
        "previous_staffing",
        [
            ("state", "int", "Previous staffing level"),
            ("state_text", "string", "Previous staffing level name"),
            ("timestamp", "datetime", "When the previous staffing was set (UTC)"),
        ],
    ),
    EventType.PersonnelStatusChanged: _root(
        "status",
        [
            ("id", "int", "Action log ID"),
            ("action_type", "int", "New status"),
            ("action_text", "string", "New status name, e.g. Responding"),
            ("timestamp", "datetime", "When the status changed (UTC)"),
            ("geo_location", "string", "Location reported with the status as latitude,longitude"),
            ("destination_id", "int", "ID of the destination (call or station)"),
            ("note", "string", "Note entered with the status"),
        ],
    )
    + _root(
        "previous_status",
        [
            ("action_type", "int", "Previous status"),
            ("action_text", "string", "Previous status name"),
            ("timestamp", "datetime", "When the previous status was set (UTC)"),
        ],
    ),
    EventType.UserCreated: _root(
        "new_user",
        [
            ("id", "string", "New user's ID"),
            ("username", "string", "New user's username"),
            ("email", "string", "New user's email address"),
            ("name", "string", "New user's name"),
        ],
    ),
    EventType.UserAssignedToGroup: _root(
        "assigned_user", [("id", "string", "Assigned user's ID"), ("name", "string", "Assigned user's name")]
    )
    + _root("group", _GROUP_SPECS[:4])
    + _root(
        "previous_group", [("id", "int", "Previous group ID"), ("name", "string", "Previous group name")]
    ),
    EventType.DocumentAdded: _root(
        "document",
        [
            ("id", "int", "Document ID"),
            ("name", "string", "Document name"),
            ("category", "string", "Document category"),
            ("description", "string", "Description"),
            ("type", "string", "MIME type"),
            ("filename", "string", "File name"),
            ("admins_only", "bool", "Whether only admins can see it"),
            ("added_on", "datetime", "When the document was added (UTC)"),
        ],
    ),
    EventType.NoteAdded: _root(
        "note",
        [
            ("id", "int", "Note ID"),
            ("title", "string", "Title"),
            ("body", "string", "Body"),
            ("color", "string", "Color"),
            ("category", "string", "Category"),
            ("is_admin_only", "bool", "Whether only admins can see it"),
            ("added_on", "datetime", "When the note was added (UTC)"),
            ("expires_on", "datetime", "When the note expires (UTC)"),
        ],
    ),
    EventType.UnitAdded: _root(
        "unit",
        [
            *_UNIT_SPECS,
            ("four_wheel", "bool", "Whether the unit has four-wheel drive"),
            ("special_permit", "bool", "Whether the unit needs a special permit"),
        ],
    ),
    EventType.LogAdded: _root(
        "log",
        [
            ("id", "int", "Log ID"),
            ("narrative", "string", "Narrative"),
            ("type", "string", "Log type name"),
            ("log_type", "int", "Log type"),
            ("external_id", "string", "ID in an external system"),
            ("initial_report", "string", "Initial report"),
            ("course", "string", "Training course"),
            ("course_code", "string", "Training course code"),
            ("instructors", "string", "Instructors"),
            ("cause", "string", "Cause"),
            ("contact_name", "string", "Contact name"),
            ("contact_number", "string", "Contact phone number"),
            ("location", "string", "Location"),
            ("started_on", "datetime", "Start (UTC)"),
            ("ended_on", "datetime", "End (UTC)"),
            ("logged_on", "datetime", "When the log was written (UTC)"),
            ("other_agencies", "string", "Other agencies involved"),
            ("other_units", "string", "Other units involved"),
            ("other_personnel", "string", "Other personnel involved"),
            ("call_id", "int", "ID of the related call"),
        ],
    ),
    EventType.CalendarEventAdded: _CALENDAR,
    EventType.CalendarEventUpdated: _CALENDAR,
    EventType.ShiftCreated: _SHIFT,
    EventType.ShiftUpdated: _SHIFT,
    EventType.ResourceOrderAdded: _root(
        "order",
        [
            ("id", "int", "Order ID"),
            ("title", "string", "Title"),
            ("incident_number", "string", "Incident number"),
            ("incident_name", "string", "Incident name"),
            ("incident_address", "string", "Incident address"),
            ("summary", "string", "Summary"),
            ("open_date", "datetime", "When the order was opened (UTC)"),
            ("needed_by", "datetime", "When the resources are needed (UTC)"),
            ("contact_name", "string", "Contact name"),
            ("contact_number", "string", "Contact phone number"),
            ("special_instructions", "string", "Special instructions"),
            ("meetup_location", "string", "Meetup location"),
            ("financial_code", "string", "Financial code"),
        ],
    ),
    EventType.ShiftTradeRequested: _root(
        "shift_trade",
        [("id", "int", "Shift trade ID"), ("department_number", "string", "Department number")],
    ),
    EventType.ShiftTradeFilled: _root(
        "shift_trade",
        [
            ("id", "int", "Shift trade ID"),
            ("filled_by_user_id", "string", "ID of the user who filled the trade"),
            ("department_number", "string", "Department number"),
        ],
    ),
    EventType.MessageSent: _root(
        "message",
        [
            ("id", "int", "Message ID"),
            ("subject", "string", "Subject"),
            ("body", "string", "Body"),
            ("is_broadcast", "bool", "Whether the message is a broadcast"),
            ("sent_on", "datetime", "When the message was sent (UTC)"),
            ("type", "int", "Message type"),
            ("recipients", "string", "Recipients"),
            ("expire_on", "datetime", "When the message expires (UTC)"),
        ],
    ),
    EventType.TrainingAdded: _TRAINING,
    EventType.TrainingUpdated: _TRAINING,
    EventType.InventoryAdjusted: _root(
        "inventory",
        [
            ("id", "int", "Inventory ID"),
            ("type_name", "string", "Inventory type name"),
            ("type_description", "string", "Inventory type description"),
            ("unit_of_measure", "string", "Unit of measure"),
            ("batch", "string", "Batch"),
            ("note", "string", "Note"),
            ("location", "string", "Location"),
            ("amount", "double", "New amount"),
            ("previous_amount", "double", "Previous amount"),
            ("timestamp", "datetime", "When the amount changed (UTC)"),
            ("group_id", "int", "ID of the group holding the inventory"),
        ],
    ),
    EventType.CertificationExpiring: _root(
        "certification",
        [
            ("id", "int", "Certification ID"),
            ("name", "string", "Certification name"),
            ("number", "string", "Certification number"),
            ("type", "string", "Certification type"),
            ("area", "string", "Certification area"),
            ("issued_by", "string", "Issuing authority"),
            ("expires_on", "datetime", "Expiry date (UTC)"),
            ("received_on", "datetime", "When the certification was received (UTC)"),
            ("days_until_expiry", "int", "Days until the certification expires"),
        ],
    ),
    EventType.FormSubmitted: _root(
        "form",
        [
            ("id", "string", "Form ID"),
            ("name", "string", "Form name"),
            ("type", "int", "Form type"),
            ("submitted_data", "string", "Submitted data (JSON text)"),
            ("submitted_by_user_id", "string", "ID of the user who submitted the form"),
            ("submitted_on", "datetime", "When the form was submitted (UTC)"),
        ],
    ),
    EventType.PersonnelRoleChanged: _root(
        "role_change",
        [
            ("user_id", "string", "ID of the user whose roles changed"),
            ("role_id", "int", "Role ID"),
            ("role_name", "string", "Role name"),
            ("role_description", "string", "Role description"),
            ("action", "string", "Added or Removed"),
        ],
    ),
    EventType.GroupAdded: _root("group", _GROUP_SPECS),
    EventType.GroupUpdated: _root("group", _GROUP_SPECS),
}

_DESCRIPTIONS: dict[EventType, tuple[str, str]] = {
    EventType.CallAdded: ("Call Added", "New call/dispatch created"),
    EventType.CallUpdated: ("Call Updated", "Existing call updated"),
    EventType.CallClosed: ("Call Closed", "Call closed"),
    EventType.UnitStatusChanged: ("Unit Status Changed", "Unit status changed"),
    EventType.PersonnelStaffingChanged: ("Personnel Staffing Changed", "Personnel staffing level changed"),
    EventType.PersonnelStatusChanged: ("Personnel Status Changed", "Personnel action status changed"),
    EventType.UserCreated: ("User Created", "New user added to department"),
    EventType.UserAssignedToGroup: ("User Assigned to Group", "User assigned to a group"),
    EventType.DocumentAdded: ("Document Added", "Document uploaded"),
    EventType.NoteAdded: ("Note Added", "Note created"),
    EventType.UnitAdded: ("Unit Added", "Unit created"),
    EventType.LogAdded: ("Log Added", "Log entry created"),
    EventType.CalendarEventAdded: ("Calendar Event Added", "Calendar event created"),
    EventType.CalendarEventUpdated: ("Calendar Event Updated", "Calendar event updated"),
    EventType.ShiftCreated: ("Shift Created", "Shift created"),
    EventType.ShiftUpdated: ("Shift Updated", "Shift updated"),
    EventType.ResourceOrderAdded: ("Resource Order Added", "Resource order created"),
    EventType.ShiftTradeRequested: ("Shift Trade Requested", "Shift trade requested"),
    EventType.ShiftTradeFilled: ("Shift Trade Filled", "Shift trade filled"),
    EventType.MessageSent: ("Message Sent", "New message sent"),
    EventType.TrainingAdded: ("Training Added", "Training created"),
    EventType.TrainingUpdated: ("Training Updated", "Training updated"),
    EventType.InventoryAdjusted: ("Inventory Adjusted", "Inventory quantity changed"),
    EventType.CertificationExpiring: ("Certification Expiring", "Certification nearing expiry"),
    EventType.FormSubmitted: ("Form Submitted", "Form submitted"),
    EventType.PersonnelRoleChanged: ("Personnel Role Changed", "User role assignment changed"),
    EventType.GroupAdded: ("Group Added", "Department group created"),
    EventType.GroupUpdated: ("Group Updated", "Department group updated"),
}

EVENT_TYPE_DESCRIPTORS: list[EventTypeDescriptor] = [
    EventTypeDescriptor(
        value=int(event_type),
        name=event_type.name,
        display_name=_DESCRIPTIONS[event_type][0],
        description=_DESCRIPTIONS[event_type][1],
        variables=COMMON_VARIABLES + _EVENT_VARIABLES[event_type],
    )
    for event_type in EventType
]


def descriptor_for(event_type: EventType) -> EventTypeDescriptor:
    return EVENT_TYPE_DESCRIPTORS[int(event_type)]


def variables_for(event_type: EventType) -> list[TemplateVariable]:
    return list(descriptor_for(event_type).variables)


def catalog_json() -> list[dict[str, Any]]:
    """The body of `GET /api/v4/workflows/eventtypes`."""
    return [descriptor.to_json() for descriptor in EVENT_TYPE_DESCRIPTORS]
