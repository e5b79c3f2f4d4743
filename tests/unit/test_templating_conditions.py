import pytest

from shared.enums import EventType
from shared.templating import (
    TemplateLimitError,
    TemplateSyntaxError,
    build_context,
    evaluate_condition,
    sample_payload,
    validate_condition,
)


@pytest.fixture(scope="module")
def call_context():
    # sample call: priority 3, is_critical true, is_deleted false, name "Structure Fire"
    return build_context(EventType.CallAdded, sample_payload(EventType.CallAdded), department_id=7)


@pytest.mark.parametrize(
    ("expression", "passed", "output"),
    [
        # bare expressions
        ("call.priority >= 2 and call.is_critical", True, "true"),
        ("call.priority > 3", False, "false"),
        ("call.priority >= 2 and call.is_deleted", False, "false"),
        ("call.is_deleted or call.priority == 3", True, "true"),
        ("call.name == 'Structure Fire'", True, "true"),
        ("call.name contains 'Fire'", True, "true"),
        ("call.priority_text != 'Emergency'", False, "false"),
        ("department.id == 7", True, "true"),
        ("call.no_such_field", False, "false"),
        ("user.full_name", True, "true"),
        # templates: the trimmed output decides
        ("{{ call.priority }}", True, "3"),
        ("{{ call.no_such_field }}", False, ""),
        ("{% if call.priority > 5 %}yes{% endif %}", False, ""),
        ("{% if call.is_critical %}  TRUE \n{% endif %}", True, "TRUE"),
        ("{{ 'False' }}", False, "False"),
        ("  {{ call.is_deleted }}  ", False, "false"),
        ("{{ 0 }}", True, "0"),
        ("{{ 'no' }}", True, "no"),
        ("   {{ '' }}\n\t", False, ""),
    ],
)
def test_truth_table(call_context, expression, passed, output):
    assert evaluate_condition(expression, call_context) == (passed, output)
    validate_condition(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("call.priority >=", "line 1, column 17: expected a primitive expression"),
        ("call.priority >= 2 and", "line 1, column 23: expected a primitive expression"),
        ("call.name contains", "line 1, column 19: expected a primitive expression"),
        ("priority high", "line 1, column 10: expected end of expression"),
        ("call.priority > 1 and\n call.x call.y", "line 2, column 9: expected end of expression"),
        ("{% if %}yes{% endif %}", "line 1, column 4: missing expression"),
        ("{% if call.is_critical %}yes", "expected tag endif"),
        ("call.is_critical %}yes{% endif", "line 1, column 23: missing tag name or closing delimiter"),
        ("call.is_critical }}", "a bare condition cannot contain '%}' or '}}'"),
        ("{% include 'other' %}", "the 'include' tag is not allowed"),
        ("{{ call.name | shout }}", "unknown filter 'shout'"),
        ("", "the condition is empty"),
        ("  \n ", "the condition is empty"),
    ],
)
def test_invalid_conditions_are_rejected(call_context, expression, message):
    with pytest.raises(TemplateSyntaxError, match=message):
        validate_condition(expression)
    with pytest.raises(TemplateSyntaxError, match=message):
        evaluate_condition(expression, call_context)


def test_condition_over_4_kb_is_rejected():
    expression = "call.priority >= 2" + " and call.is_critical" * 200
    assert len(expression) > 4096
    with pytest.raises(TemplateLimitError, match="4096 characters"):
        validate_condition(expression)
    validate_condition(expression[:4096].rsplit(" and", 1)[0])


def test_conditions_obey_the_sandbox_limits(call_context):
    with pytest.raises(TemplateLimitError, match="loop iteration limit of 500"):
        evaluate_condition("{% for i in (1..1000) %}{% endfor %}true", call_context)
