"""The template context of one event: its payload roots plus `department`, `user`, `timestamp` and `event`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.core import get_global

from shared.enums import EventType

DEPARTMENT_FIELDS = (
    "name",
    "code",
    "type",
    "time_zone",
    "use_24_hour_time",
    "created_on",
    "phone_number",
)
ADDRESS_FIELDS = ("street", "city", "state", "postal_code", "country")
USER_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "mobile_number",
    "home_number",
    "identification_number",
    "username",
    "time_zone",
)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=256)
def department_zone(name: str) -> tzinfo:
    """The zone for an IANA name or a Windows name ("Eastern Standard Time", as Resgrid stores them); else UTC."""
    name = name.strip()
    windows: Mapping[str, str] = get_global("windows_zone_mapping")  # CLDR windowsZones, shipped with Babel
    try:
        return ZoneInfo(windows.get(name, name))
    except (KeyError, ValueError, OSError):  # unknown name, or a key that is not a relative zone path
        return UTC


def _present(value: object) -> bool:
    return value is not None and value != ""


def _filled(source: object, fields: tuple[str, ...]) -> dict[str, Any]:
    given = (
        {key: value for key, value in source.items() if value is not None}
        if isinstance(source, Mapping)
        else {}
    )
    return dict.fromkeys(fields, "") | given


def _department(source: object, department_id: int) -> dict[str, Any]:
    department = _filled(source, DEPARTMENT_FIELDS)
    address = department.get("address")
    if not isinstance(address, Mapping):
        address = {"full": address} if _present(address) else {}
    address = _filled(address, (*ADDRESS_FIELDS, "full"))
    if not _present(address["full"]):
        address["full"] = " ".join(
            str(address[field]) for field in ADDRESS_FIELDS if _present(address[field])
        )
    department["address"] = address
    department["id"] = department_id
    return department


def _user(source: object) -> dict[str, Any]:
    user = _filled(source, USER_FIELDS)
    if not _present(user["full_name"]):
        user["full_name"] = " ".join(
            str(user[part]) for part in ("first_name", "last_name") if _present(user[part])
        )
    return user


def _timestamp(now: datetime, zone: tzinfo) -> dict[str, str]:
    local = now.astimezone(zone)
    department_now = iso_utc(local) if local.utcoffset() == timedelta(0) else local.isoformat("T", "seconds")
    return {
        "utc_now": iso_utc(now),
        "department_now": department_now,
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M:%S"),
        "day_of_week": _DAY_NAMES[local.weekday()],
    }


def build_context(
    event_type: EventType,
    payload: Mapping[str, Any],
    *,
    department_id: int,
    occurred_on: datetime | None = None,
    now: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Template variables for one event: the payload's roots, then the common roots (which take precedence)."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    department = _department(payload.get("department"), department_id)
    zone = department_zone(department["time_zone"]) if isinstance(department["time_zone"], str) else UTC
    event: dict[str, Any] = {
        "type": event_type.name,
        "type_value": int(event_type),
        "occurred_on": iso_utc(occurred_on if occurred_on is not None else now),
    }
    if event_id is not None:
        event["id"] = event_id
    return {
        **payload,
        "department": department,
        "user": _user(payload.get("user")),
        "timestamp": _timestamp(now, zone),
        "event": event,
    }
