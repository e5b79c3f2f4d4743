"""Enumerations of the Workflows API; values are part of the public contract."""

from enum import IntEnum, StrEnum


class EventType(IntEnum):
    CallAdded = 0
    CallUpdated = 1
    CallClosed = 2
    UnitStatusChanged = 3
    PersonnelStaffingChanged = 4
    PersonnelStatusChanged = 5
    UserCreated = 6
    UserAssignedToGroup = 7
    DocumentAdded = 8
    NoteAdded = 9
    UnitAdded = 10
    LogAdded = 11
    CalendarEventAdded = 12
    CalendarEventUpdated = 13
    ShiftCreated = 14
    ShiftUpdated = 15
    ResourceOrderAdded = 16
    ShiftTradeRequested = 17
    ShiftTradeFilled = 18
    MessageSent = 19
    TrainingAdded = 20
    TrainingUpdated = 21
    InventoryAdjusted = 22
    CertificationExpiring = 23
    FormSubmitted = 24
    PersonnelRoleChanged = 25
    GroupAdded = 26
    GroupUpdated = 27


class ActionType(IntEnum):
    SendEmail = 0
    SendSms = 1
    CallApiGet = 2
    CallApiPost = 3
    CallApiPut = 4
    CallApiDelete = 5
    UploadFileFtp = 6
    UploadFileSftp = 7
    UploadFileS3 = 8
    SendTeamsMessage = 9
    SendSlackMessage = 10
    SendDiscordMessage = 11
    UploadFileAzureBlob = 12
    UploadFileBox = 13
    UploadFileDropbox = 14


class CredentialType(IntEnum):
    Smtp = 0
    Twilio = 1
    Ftp = 2
    Sftp = 3
    AwsS3 = 4
    HttpBearer = 5
    HttpBasic = 6
    HttpApiKey = 7
    MicrosoftTeams = 8
    Slack = 9
    Discord = 10
    AzureBlobStorage = 11
    Box = 12
    Dropbox = 13


class RunStatus(IntEnum):
    Pending = 0
    Running = 1
    Completed = 2
    Failed = 3
    Cancelled = 4
    Retrying = 5
    Skipped = 6  # step logs only


FINAL_RUN_STATUSES = frozenset({RunStatus.Completed, RunStatus.Failed, RunStatus.Cancelled})
OPEN_RUN_STATUSES = frozenset({RunStatus.Pending, RunStatus.Running, RunStatus.Retrying})


class Plan(StrEnum):
    Free = "Free"
    Paid = "Paid"
