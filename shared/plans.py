"""Plan limits (the spec's "Security & Rate Limits" tables)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.enums import EventType, Plan


@dataclass(frozen=True, slots=True)
class PlanLimits:
    workflows: int
    steps_per_workflow: int
    credentials: int
    executions_per_minute: int
    daily_runs: int | None  # None: unlimited
    emails_per_day: int
    sms_per_day: int
    email_recipients: int
    email_cc_allowed: bool
    sms_recipients: int
    rate_exempt_events: frozenset[EventType]


MAX_RETRY_CEILING = 5

LIMITS: dict[Plan, PlanLimits] = {
    Plan.Free: PlanLimits(
        workflows=3,
        steps_per_workflow=5,
        credentials=2,
        executions_per_minute=5,
        daily_runs=50,
        emails_per_day=10,
        sms_per_day=5,
        email_recipients=1,
        email_cc_allowed=False,
        sms_recipients=1,
        rate_exempt_events=frozenset(),
    ),
    Plan.Paid: PlanLimits(
        workflows=28,
        steps_per_workflow=20,
        credentials=20,
        executions_per_minute=60,
        daily_runs=None,
        emails_per_day=500,
        sms_per_day=200,
        email_recipients=10,
        email_cc_allowed=True,
        sms_recipients=5,
        rate_exempt_events=frozenset({EventType.CallAdded, EventType.CallUpdated, EventType.CallClosed}),
    ),
}


def limits_for(plan: Plan) -> PlanLimits:
    return LIMITS[plan]


DAILY_CAP_PREFIX = "Daily run limit reached"


def daily_cap_message(plan: Plan, cap: int) -> str:
    """The error of a run the dispatcher failed at the daily cap (the test endpoint answers it with 429)."""
    return (
        f"{DAILY_CAP_PREFIX}: the {plan.value} plan allows {cap} runs per day; this run performed no action"
    )
