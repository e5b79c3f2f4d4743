"""SendSms: one Twilio Messages API call per recipient, over the egress-guarded HTTP client."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult, permanent
from services.executor.actions.config_readers import required_text, text_value
from services.executor.actions.http_requests import http_request
from services.executor.actions.recipients import left_out_note, split_recipients
from shared.actions.replies import HttpReply, body_snippet, redact_error, status_error
from shared.enums import Plan

MAX_SMS_CHARS = 459  # three concatenated GSM-7 segments
TRUNCATION_SUFFIX = "... (message truncated)"
RECIPIENT_CAPS = {Plan.Free: 1, Plan.Paid: 5}

_CREDENTIAL = "Twilio credential"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
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


async def send_sms(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    account_sid = required_text(ctx.credential, "accountSid", what=_CREDENTIAL)
    auth_token = required_text(ctx.credential, "authToken", what=_CREDENTIAL)
    if not _SID.match(account_sid):
        raise permanent("Twilio credential has an invalid 'accountSid'")
    sender = _sender_fields(ctx)

    recipients = split_recipients(required_text(ctx.config, "to", what="SMS action config"))
    invalid = [r for r in recipients if not _E164.match(r)]
    if invalid:
        raise permanent(f"Not E.164 phone numbers: {', '.join(invalid)} (expected e.g. +15551234567)")
    cap = RECIPIENT_CAPS.get(ctx.plan, RECIPIENT_CAPS[Plan.Free])
    chosen, left_out = recipients[:cap], recipients[cap:]

    body = prepare_sms_body(ctx.content)
    if not body:
        raise permanent("The rendered SMS message is empty")

    url = (
        f"{deps.settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid)}/Messages.json"
    )
    await deps.quota.reserve(len(chosen))
    sent: list[str] = []
    last_sid = ""
    try:
        for index, recipient in enumerate(chosen):
            reply = await http_request(
                deps.egress,
                "POST",
                url,
                what="Twilio",
                timeout=deps.settings.http_timeout_s,
                follow_redirects=False,
                # Stable per step and recipient: a retry after a partial failure is deduplicated by Twilio.
                headers={
                    "I-Twilio-Idempotency-Token": f"{ctx.idempotency_key}-{index}",
                    "Accept": "application/json",
                },
                data={"To": recipient, "Body": body, **sender},
                auth=(account_sid, auth_token),
            )
            last_sid = _check_reply(reply, recipient, deps)
            sent.append(recipient)
    except ActionError as exc:
        await deps.quota.release(len(chosen) - len(sent))
        raise redact_error(_with_progress(exc, sent), [auth_token]) from None
    except BaseException:
        await deps.quota.release(len(chosen) - len(sent))
        raise
    note = left_out_note(left_out, ctx.plan, cap)
    return ActionResult(f"SMS sent to {len(sent)} recipient(s). Last SID: {last_sid}{note}")


def _sender_fields(ctx: ActionContext) -> dict[str, str]:
    from_number = text_value(ctx.credential, "fromNumber", what=_CREDENTIAL)
    service_sid = text_value(ctx.credential, "messagingServiceSid", what=_CREDENTIAL)
    if service_sid:
        return {"MessagingServiceSid": service_sid}
    if from_number:
        return {"From": from_number}
    raise permanent("Twilio credential needs 'fromNumber' or 'messagingServiceSid'")


def _check_reply(reply: HttpReply, recipient: str, deps: ActionDeps) -> str:
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
        reply.status, what=what, detail=detail, retry_after=reply.retry_after(deps.settings.max_retry_after_s)
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
