"""Liquid templating for workflow steps: the sandbox, the template context and the event-type catalogue."""

from .catalog import (
    EVENT_TYPE_DESCRIPTORS,
    EventTypeDescriptor,
    TemplateVariable,
    catalog_json,
    variables_for,
)
from .context import build_context
from .errors import TemplateError, TemplateLimitError, TemplateSyntaxError
from .samples import sample_payload
from .sandbox import (
    evaluate_condition,
    render,
    render_config,
    validate_condition,
    validate_config,
    validate_template,
)

__all__ = [
    "EVENT_TYPE_DESCRIPTORS",
    "EventTypeDescriptor",
    "TemplateError",
    "TemplateLimitError",
    "TemplateSyntaxError",
    "TemplateVariable",
    "build_context",
    "catalog_json",
    "evaluate_condition",
    "render",
    "render_config",
    "sample_payload",
    "validate_condition",
    "validate_config",
    "validate_template",
    "variables_for",
]
