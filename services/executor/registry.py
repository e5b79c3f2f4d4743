"""ActionType → the one function that performs it."""

from __future__ import annotations

from services.executor.actions import (
    azure_blob,
    box,
    dropbox,
    email,
    ftp,
    http_call,
    s3,
    sftp,
    sms,
    webhooks,
)
from services.executor.actions.base import Action
from shared.enums import ActionType

ACTIONS: dict[ActionType, Action] = {
    ActionType.SendEmail: email.send_email,
    ActionType.SendSms: sms.send_sms,
    ActionType.CallApiGet: http_call.call_api,
    ActionType.CallApiPost: http_call.call_api,
    ActionType.CallApiPut: http_call.call_api,
    ActionType.CallApiDelete: http_call.call_api,
    ActionType.UploadFileFtp: ftp.upload_ftp,
    ActionType.UploadFileSftp: sftp.upload_sftp,
    ActionType.UploadFileS3: s3.upload_s3,
    ActionType.SendTeamsMessage: webhooks.send_teams,
    ActionType.SendSlackMessage: webhooks.send_slack,
    ActionType.SendDiscordMessage: webhooks.send_discord,
    ActionType.UploadFileAzureBlob: azure_blob.upload_azure_blob,
    ActionType.UploadFileBox: box.upload_box,
    ActionType.UploadFileDropbox: dropbox.upload_dropbox,
}
