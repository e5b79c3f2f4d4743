from __future__ import annotations

from services.api.schemas import Schema


class TemplateVariableResult(Schema):
    Name: str
    DataType: str
    Description: str
    IsCommon: bool


class EventTypeResult(Schema):
    Value: int
    Name: str
    DisplayName: str
    Description: str
    Variables: list[TemplateVariableResult]
