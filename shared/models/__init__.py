from shared.models.base import Base
from shared.models.credential import WorkflowCredential
from shared.models.department import Department, DepartmentDailyUsage, DepartmentRateState
from shared.models.health import HealthCounted, HealthLatest, HealthRollup
from shared.models.run import RunStepLedger, WorkflowRun, WorkflowRunLog
from shared.models.workflow import Workflow, WorkflowChange, WorkflowChangeHead, WorkflowStep

__all__ = [
    "Base",
    "Department",
    "DepartmentDailyUsage",
    "DepartmentRateState",
    "HealthCounted",
    "HealthLatest",
    "HealthRollup",
    "RunStepLedger",
    "Workflow",
    "WorkflowChange",
    "WorkflowChangeHead",
    "WorkflowCredential",
    "WorkflowRun",
    "WorkflowRunLog",
    "WorkflowStep",
]
