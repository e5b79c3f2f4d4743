"""SendSms: one Twilio Messages API call per recipient: credential, config model and ``perform``."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator

from shared.actions.config_fields import as_text, phone_numbers
from shared.actions.outcomes import ActionError, ActionResult, permanent
from shared.actions.recipients import left_out_note, split_recipients
from shared.actions.replies import HttpReply, body_snippet, redact_error, status_error
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import (
    CredentialData,
    Line,
    Token,
    _secret,
    matching,
)
from shared.enums import ActionType, CredentialType, Plan

# --- credentials ------------------------------------------------------------------------------------


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _twilio_sender(value: str) -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if _E164.match(compact):
        return compact
    if _ALPHANUMERIC_SENDER.match(value):
        return value
    raise ValueError("must be an E.164 phone number like +15551234567 or an alphanumeric sender ID")


class TwilioCredential(CredentialData):
    """Twilio SMS (type 1). ``fromNumber`` or ``messagingServiceSid`` (or both) must be set."""

    account_sid: Annotated[Token, matching(r"^AC[0-9A-Za-z]+$", "must be a Twilio Account SID (AC...)")]
    auth_token: Token = _secret(required=True)
    from_number: Annotated[Line, AfterValidator(_twilio_sender)] | None = None
    messaging_service_sid: (
        Annotated[Token, matching(r"^MG[0-9A-Za-z]+$", "must be a Messaging Service SID (MG...)")] | None
    ) = None

    def cross_field_errors(self) -> list[tuple[str, str]]:
        if not self.from_number and not self.messaging_service_sid:
            return [("fromNumber", "is required unless messagingServiceSid is set")]
        return []


# --- config -----------------------------------------------------------------------------------------


class SendSmsConfig(ActionConfig):
    to: Annotated[str, as_text(phone_numbers)]


# --- perform ----------------------------------------------------------------------------------------

MAX_SMS_CHARS = 459  # three concatenated GSM-7 segments
TRUNCATION_SUFFIX = "... (message truncated)"
RECIPIENT_CAPS = {Plan.Free: 1, Plan.Paid: 5}

_CREDENTIAL = "Twilio credential"
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
# Characters outside the GSM-7 alphabet that templates commonly produce; mapping them keeps messages
# in 160-character GSM segments instead of 70-character UCS-2 ones.
_GSM_REPLACEMENTS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)


def prepare_sms_body(text: str, limit: int = MAX_SMS_CHARS) -> str:
    """Normalise typographic characters to GSM-7 equivalents and truncate to ``limit`` characters."""
    body = text.translate(_GSM_REPLACEMENTS).replace("\r\n", "\n").strip()
    if len(body) > limit:
        body = body[: limit - len(TRUNCATION_SUFFIX)].rstrip() + TRUNCATION_SUFFIX
    return body


async def send_sms(
    host: ActionHost, step: StepRun, config: SendSmsConfig, credential: TwilioCredential | None
) -> ActionResult:
    account_sid = _required(credential.account_sid if credential else None, "accountSid")
    auth_token = _required(credential.auth_token if credential else None, "authToken")
    if not _SID.match(account_sid):
        raise permanent("Twilio credential has an invalid 'accountSid'")
    sender = _sender_fields(credential)

    recipients = split_recipients(config.to)
    invalid = [r for r in recipients if not _E164.match(r)]
    if invalid:
        raise permanent(f"Not E.164 phone numbers: {', '.join(invalid)} (expected e.g. +15551234567)")
    cap = RECIPIENT_CAPS.get(step.plan, RECIPIENT_CAPS[Plan.Free])
    chosen, left_out = recipients[:cap], recipients[cap:]

    body = prepare_sms_body(step.content)
    if not body:
        raise permanent("The rendered SMS message is empty")

    url = (
        f"{host.settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid)}/Messages.json"
    )
    await host.quota.reserve(len(chosen))
    sent: list[str] = []
    last_sid = ""
    try:
        for index, recipient in enumerate(chosen):
            reply = await host.http_request(
                "POST",
                url,
                what="Twilio",
                timeout=host.settings.http_timeout_s,
                follow_redirects=False,
                # Stable per step and recipient: a retry after a partial failure is deduplicated by Twilio.
                headers={
                    "I-Twilio-Idempotency-Token": f"{step.idempotency_key}-{index}",
                    "Accept": "application/json",
                },
                data={"To": recipient, "Body": body, **sender},
                auth=(account_sid, auth_token),
            )
            last_sid = _check_reply(reply, recipient, host)
            sent.append(recipient)
    except ActionError as exc:
        await host.quota.release(len(chosen) - len(sent))
        raise redact_error(_with_progress(exc, sent), [auth_token]) from None
    except BaseException:
        await host.quota.release(len(chosen) - len(sent))
        raise
    note = left_out_note(left_out, step.plan, cap)
    return ActionResult(f"SMS sent to {len(sent)} recipient(s). Last SID: {last_sid}{note}")


def _required(value: str | None, key: str) -> str:
    text = (value or "").strip()
    if not text:
        raise permanent(f"{_CREDENTIAL} is missing '{key}'")
    return text


def _sender_fields(credential: TwilioCredential | None) -> dict[str, str]:
    from_number = (credential.from_number or "").strip() if credential else ""
    service_sid = (credential.messaging_service_sid or "").strip() if credential else ""
    if service_sid:
        return {"MessagingServiceSid": service_sid}
    if from_number:
        return {"From": from_number}
    raise permanent("Twilio credential needs 'fromNumber' or 'messagingServiceSid'")


def _check_reply(reply: HttpReply, recipient: str, host: ActionHost) -> str:
    """The message SID of a successful reply; otherwise raises, naming Twilio's error."""
    detail = _twilio_error(reply.text)
    if 200 <= reply.status < 300:
        try:
            sid = json.loads(reply.text).get("sid")
        except (ValueError, AttributeError):
            sid = None
        return str(sid) if sid else "(none)"
    what = f"Twilio (sending to {recipient})"
    if reply.status in (401, 403):
        raise permanent(f"{what} refused the credential: HTTP {reply.status} {detail}".rstrip())
    raise status_error(
        reply.status, what=what, detail=detail, retry_after=reply.retry_after(host.settings.max_retry_after_s)
    )


def _twilio_error(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        return body_snippet(text.strip(), 300)
    if isinstance(payload, dict) and payload.get("message"):
        code = payload.get("code")
        return f"{payload['message']}" + (f" (Twilio error {code})" if code else "")
    return body_snippet(text.strip(), 300)


def _with_progress(exc: ActionError, sent: list[str]) -> ActionError:
    if not sent:
        return exc
    note = f" (already sent to {', '.join(sent)}; a retry reuses their idempotency tokens)"
    return ActionError(
        exc.message + note,
        permanent=exc.permanent,
        retry_after=exc.retry_after,
        result=f"SMS sent to {len(sent)} recipient(s) before the failure",
    )


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.SendSms, SendSmsConfig, frozenset({CredentialType.Twilio}), TwilioCredential, send_sms
    )
]
