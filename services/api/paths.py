"""Path ids, bounded to their column types (int32; run ids int64) so that a larger id is 400, not a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from services.api.schemas import INT32_MAX, INT64_MAX

WorkflowId = Annotated[int, Path(ge=1, le=INT32_MAX, description="Workflow ID")]
StepId = Annotated[int, Path(ge=1, le=INT32_MAX, description="Step ID")]
CredentialId = Annotated[int, Path(ge=1, le=INT32_MAX, description="Credential ID")]
RunId = Annotated[int, Path(ge=1, le=INT64_MAX, description="Workflow run ID")]
DepartmentId = Annotated[int, Path(gt=0, le=INT32_MAX, description="Department ID")]
