import time
import traceback
from collections.abc import Sequence

import pytest

import shared.templating.environment as sandbox_environment
from shared.templating import (
    TemplateError,
    TemplateLimitError,
    TemplateSyntaxError,
    render,
    render_config,
    validate_config,
    validate_template,
)
from shared.templating.cache import TemplateCache

LOOP_LIMIT = "Template exceeded the loop iteration limit of 500"
DEPTH_LIMIT = "Template exceeded the nesting depth limit of 50"
OUTPUT_LIMIT = "output size limit of 262144 characters"
SECRET = "tok_live_9f8e7d6c5b4a"


class CountingSequence(Sequence[int]):
    """A payload list that records how far the renderer got into it."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.fetched = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.length))]
        if not 0 <= index < self.length:
            raise IndexError(index)
        self.fetched += 1
        return index


class TestLoopLimit:
    def test_500_iterations_render(self):
        assert render("{% for i in (1..500) %}x{% endfor %}", {}) == "x" * 500

    def test_501_iterations_fail(self):
        with pytest.raises(TemplateLimitError) as caught:
            render("{% for i in (1..501) %}x{% endfor %}", {})
        assert str(caught.value) == LOOP_LIMIT

    def test_nested_loops_whose_product_exceeds_the_limit_fail(self):
        with pytest.raises(TemplateLimitError, match=LOOP_LIMIT):
            render("{% for i in (1..23) %}{% for j in (1..22) %}x{% endfor %}{% endfor %}", {})

    def test_nested_loops_within_the_budget_render(self):
        # 20 outer + 20 × 24 inner iterations = 500
        output = render("{% for i in (1..20) %}{% for j in (1..24) %}x{% endfor %}{% endfor %}", {})
        assert output == "x" * 480

    def test_sequential_loops_share_one_budget_per_render(self):
        with pytest.raises(TemplateLimitError, match=LOOP_LIMIT):
            render("{% for i in (1..300) %}{% endfor %}{% for i in (1..201) %}{% endfor %}", {})

    def test_budget_is_per_render(self):
        template = "{% for i in (1..400) %}{% endfor %}ok"
        assert [render(template, {}) for _ in range(3)] == ["ok"] * 3

    def test_loop_over_a_long_payload_list_fails(self):
        with pytest.raises(TemplateLimitError, match=LOOP_LIMIT):
            render(
                "{% for d in call.dispatches %}{{ d }}{% endfor %}",
                {"call": {"dispatches": list(range(600))}},
            )

    def test_limit_keyword_keeps_a_long_list_within_budget(self):
        assert render("{% for i in (1..1000000000) limit: 3 %}{{ i }}{% endfor %}", {}) == "123"

    def test_huge_reversed_range_fails_before_building_it(self):
        started = time.perf_counter()
        with pytest.raises(TemplateLimitError, match=LOOP_LIMIT):
            render("{% for i in (1..1000000000) reversed %}{{ i }}{% endfor %}", {})
        assert time.perf_counter() - started < 0.5

    def test_tablerow_counts_too(self):
        with pytest.raises(TemplateLimitError, match=LOOP_LIMIT):
            render("{% tablerow i in (1..501) %}{{ i }}{% endtablerow %}", {})


class TestNestingDepth:
    def test_50_nested_blocks_render(self):
        template = "{% if on %}" * 50 + "deep" + "{% endif %}" * 50
        assert render(template, {"on": True}) == "deep"

    def test_51_nested_blocks_fail_at_validation(self):
        with pytest.raises(TemplateLimitError) as caught:
            validate_template("{% if on %}" * 51 + "deep" + "{% endif %}" * 51)
        assert str(caught.value) == DEPTH_LIMIT

    def test_50_nested_loops_render(self):
        template = "{% for i in (1..1) %}" * 50 + "deep" + "{% endfor %}" * 50
        assert render(template, {}) == "deep"

    def test_51_nested_loops_fail(self):
        with pytest.raises(TemplateLimitError, match=DEPTH_LIMIT):
            render("{% for i in (1..1) %}" * 51 + "deep" + "{% endfor %}" * 51, {})


class TestOutputLimit:
    @pytest.mark.parametrize("char", ["x", "é"])
    def test_output_of_exactly_256_kb_renders(self, char):
        assert len(render("{{ head }}" + char * 262_143, {"head": char})) == 262_144

    def test_one_character_more_fails(self):
        with pytest.raises(TemplateLimitError, match=OUTPUT_LIMIT):
            render("{{ head }}" + "x" * 262_144, {"head": "x"})

    def test_limit_is_enforced_while_rendering(self):
        items = CountingSequence(400)
        with pytest.raises(TemplateLimitError, match=OUTPUT_LIMIT):
            render("{% for i in items %}{{ chunk }}{% endfor %}", {"items": items, "chunk": "y" * 1000})
        # 263 chunks break the limit: rendering stopped there instead of finishing and checking afterwards
        assert items.fetched == 263

    def test_capture_cannot_hide_output(self):
        with pytest.raises(TemplateLimitError, match=OUTPUT_LIMIT):
            render(
                "{% capture c %}{% for i in (1..300) %}{{ chunk }}{% endfor %}{% endcapture %}",
                {"chunk": "y" * 1000},
            )


class TestValueLimits:
    def test_replace_amplification_fails_before_allocating(self):
        template = "{{ 'aaaa'" + " | replace: 'a', 'aaaa'" * 12 + " | size }}"
        with pytest.raises(TemplateLimitError, match="value size limit"):
            render(template, {})

    def test_doubling_a_list_in_a_loop_fails(self):
        template = (
            "{% assign a = 'x' | split: ',' %}"
            "{% for i in (1..40) %}{% assign a = a | concat: a %}{% endfor %}{{ a | size }}"
        )
        with pytest.raises(TemplateLimitError, match="value size limit"):
            render(template, {})

    def test_squaring_a_number_in_a_loop_fails(self):
        template = "{% assign n = 2 %}{% for i in (1..40) %}{% assign n = n | times: n %}{% endfor %}{{ n }}"
        with pytest.raises(TemplateLimitError, match="number size limit of 4096 bits"):
            render(template, {})

    def test_joining_a_huge_range_fails(self):
        with pytest.raises(TemplateLimitError, match="value size limit"):
            render("{{ (1..1000000000) | join: ',' }}", {})

    def test_ordinary_filters_still_work(self):
        output = render(
            "{{ name | upcase }}|{{ name | replace: 'Fire', 'Blaze' }}|{{ roles | join: ', ' }}|{{ n | times: 3 }}",
            {"name": "Structure Fire", "roles": ["Driver", "Medic"], "n": 7},
        )
        assert output == "STRUCTURE FIRE|Structure Blaze|Driver, Medic|21"


class TestRenderTimeLimit:
    def test_slow_template_is_stopped(self, monkeypatch):
        monkeypatch.setattr(sandbox_environment, "RENDER_TIME_LIMIT_SECONDS", 0.05)
        body = "{% assign y = big | upcase | downcase %}" * 20
        started = time.perf_counter()
        with pytest.raises(TemplateLimitError, match="render time limit"):
            render("{% for i in (1..500) %}" + body + "{% endfor %}", {"big": "x" * 200_000})
        assert time.perf_counter() - started < 1.0


class TestNoOtherTemplates:
    @pytest.mark.parametrize(
        ("template", "tag"),
        [
            ("{% include 'header' %}", "include"),
            ("Hi\n{% render 'footer' %}", "render"),
            ("{% liquid\n  include 'header'\n%}", "include"),
        ],
    )
    def test_rejected_at_validation(self, template, tag):
        with pytest.raises(TemplateSyntaxError, match=f"the '{tag}' tag is not allowed"):
            validate_template(template)

    @pytest.mark.parametrize("tag", ["extends", "macro", "with"])
    def test_extra_tags_are_not_registered(self, tag):
        with pytest.raises(TemplateSyntaxError, match=f"unexpected tag '{tag}'"):
            validate_template(f"{{% {tag} 'base' %}}")


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("template", "line", "column", "message"),
        [
            ("Dear crew,\n\nCall: {% if %}x{% endif %}", 3, 10, "missing expression"),
            ("Hi {{ user.name }\nthere", 1, 4, "expected '}}', found end of file"),
            ("x\n  {{ call.name | shout }}", 2, 18, "unknown filter 'shout'"),
            ("{% for x in call.dispatches %}", 1, 31, "expected tag endfor"),
            ("{% endif %}", 1, 4, "unexpected tag 'endif'"),
        ],
    )
    def test_message_has_line_and_column(self, template, line, column, message):
        with pytest.raises(TemplateSyntaxError) as caught:
            validate_template(template)
        assert str(caught.value).startswith(f"line {line}, column {column}: {message}")
        assert (caught.value.line, caught.value.column) == (line, column)

    def test_template_over_64_kb_is_rejected(self):
        with pytest.raises(TemplateLimitError, match="65536 characters"):
            validate_template("x" * 65_537)

    def test_valid_template_passes(self):
        validate_template("{% for d in call.dispatches %}{{ d.full_name | upcase }}{% endfor %}")


class TestUndefined:
    def test_undefined_variables_and_paths_render_empty(self):
        context = {"call": {"name": "Structure Fire"}}
        template = (
            "[{{ nothing }}][{{ call.missing }}][{{ call.name.deeper.still }}][{{ nothing.at.all | upcase }}]"
        )
        assert render(template, context) == "[][][][]"

    def test_undefined_is_falsy_and_iterates_empty(self):
        assert (
            render("{% if call.missing %}yes{% else %}no{% endif %}{% for x in nope %}x{% endfor %}", {})
            == "no"
        )


class TestErrorsNeverShowContextValues:
    @pytest.mark.parametrize(
        "template",
        [
            "{{ secret | divided_by: 0 }}",
            "{% if secret > 1 %}x{% endif %}",
            "{{ secret | truncate: secret }}",
            "{{ 'x' | slice: secret }}",
            "{{ number | ceil }}",
            "{% for i in (1..600) %}{{ secret }}{% endfor %}",
            "{% for i in (1..20000) %}{{ secret }}{% endfor %}",
            "{% assign s = secret %}{% for i in (1..30) %}{% assign s = s | append: s %}{% endfor %}",
        ],
    )
    def test_message_and_traceback_are_clean(self, template):
        with pytest.raises(TemplateError) as caught:
            render(template, {"secret": SECRET, "number": "1e999"})
        error = caught.value
        assert SECRET not in str(error)
        assert SECRET not in "".join(traceback.format_exception(error))
        assert error.__cause__ is None
        assert error.__suppress_context__

    def test_values_derived_from_context_are_not_shown(self):
        # python-liquid's own error here would read "year 3170843 is out of range", derived from the value
        with pytest.raises(TemplateError) as caught:
            render("{{ pin | date: '%Y' }}", {"pin": "99999999999999"})
        assert "3170843" not in "".join(traceback.format_exception(caught.value))
        assert str(caught.value) == "the template could not be rendered (ValueError)"


class TestRenderConfig:
    def test_renders_nested_strings_and_leaves_other_values(self):
        config = {
            "to": "{{ user.email }}",
            "subject": "Call {{ call.id }}: {{ call.name }}",
            "timeoutSeconds": 30,
            "overwrite": True,
            "ratio": 1.5,
            "replyTo": None,
            "headers": {"X-Call": "{{ call.id }}", "X-Static": "fixed"},
            "tags": ["{{ call.name | downcase }}", 7, {"deep": "{{ user.email | split: '@' | last }}"}],
            "{{ call.id }}": "keys are not templates",
        }
        context = {"user": {"email": "jsmith@samplefire.org"}, "call": {"id": 1001, "name": "Structure Fire"}}
        assert render_config(config, context) == {
            "to": "jsmith@samplefire.org",
            "subject": "Call 1001: Structure Fire",
            "timeoutSeconds": 30,
            "overwrite": True,
            "ratio": 1.5,
            "replyTo": None,
            "headers": {"X-Call": "1001", "X-Static": "fixed"},
            "tags": ["structure fire", 7, {"deep": "samplefire.org"}],
            "{{ call.id }}": "keys are not templates",
        }

    def test_total_output_shares_the_256_kb_cap(self):
        context = {"chunk": "z" * 150_000}
        assert len(render_config({"a": "{{ chunk }}"}, context)["a"]) == 150_000
        with pytest.raises(TemplateLimitError, match=OUTPUT_LIMIT) as caught:
            render_config({"a": "{{ chunk }}", "headers": {"b": "{{ chunk }}"}}, context)
        assert str(caught.value).startswith("headers.b: ")

    def test_plain_strings_count_towards_the_cap(self):
        with pytest.raises(TemplateLimitError, match=OUTPUT_LIMIT):
            render_config({"a": "p" * 200_000, "b": ["q" * 100_000]}, {})

    def test_validate_config_parses_every_string(self):
        validate_config({"to": "{{ user.email }}", "timeoutSeconds": 30, "tags": ["{{ call.id }}", None]})
        with pytest.raises(
            TemplateSyntaxError, match=r"^headers\.X-Call: line 1, column 11: unknown filter 'nope'"
        ):
            validate_config({"to": "x", "headers": {"X-Call": "{{ call | nope }}"}})
        with pytest.raises(TemplateSyntaxError, match=r"^tags\[1\]: line 1, column 4: missing expression"):
            validate_config({"tags": ["ok", "{% if %}"]})

    def test_error_names_the_field(self):
        with pytest.raises(TemplateSyntaxError, match=r"^subject: line 1, column 4: missing expression"):
            render_config({"to": "x", "subject": "{% if %}"}, {})


class TestTemplateCache:
    def test_evicts_least_recently_used_entry(self):
        cache: TemplateCache[int] = TemplateCache(max_entries=2, max_chars=100)
        cache.put("a", 1)
        cache.put("b", 2)
        assert cache.get("a") == 1
        cache.put("c", 3)
        assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)

    def test_total_source_size_is_bounded(self):
        cache: TemplateCache[int] = TemplateCache(max_entries=10, max_chars=10)
        cache.put("x" * 6, 1)
        cache.put("y" * 6, 2)
        assert (cache.get("x" * 6), cache.get("y" * 6)) == (None, 2)
        cache.put("z" * 11, 3)
        assert cache.get("z" * 11) is None
        assert len(cache) == 1
