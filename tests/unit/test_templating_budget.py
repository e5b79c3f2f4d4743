"""The step render budget and the linear filters.

* strip_html and uniq give python-liquid's answers on ordinary input, in linear time on hostile input.
* StepBudget: one deadline for all of a step's renders; a render that overruns it in a single call is
  stopped (the worker thread gets an asynchronous exception) while the event loop keeps running.
* Hypothesis: random templates over random payloads end within the budget and the output cap.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from liquid.builtin.filters.array import uniq as liquid_uniq
from liquid.utils.html import strip_tags as liquid_strip_tags

from shared.templating import TemplateError, render
from shared.templating.budget import STEP_RENDER_BUDGET_S, TIME_LIMIT_MESSAGE, StepBudget
from shared.templating.errors import TemplateLimitError
from shared.templating.filters import strip_html, uniq
from shared.templating.limits import MAX_OUTPUT_CHARS

HTML = [
    "<p>a<b>b</b></p>",
    "<script>x()</script>y",
    "<SCRIPT type=x>bad</SCRIPT >ok",
    "<style>p{}</style>t",
    "<!-- c -->z",
    "a < b > c",
    'x<a href="&gt;">l</a>&amp;',
    "a<b",
    '<a title="x>y">t</a>',
    "<scripts>k</scripts>",
    "<br/>line<br />",
    "plain text",
    "<div><h1>Fire at <b>Main St</b></h1><p>Engine 3 &amp; Truck 1</p></div>",
]


@pytest.mark.parametrize("html", HTML)
def test_strip_html_matches_python_liquid_on_ordinary_html(html: str) -> None:
    assert strip_html(html) == liquid_strip_tags(html)


@pytest.mark.parametrize(
    "attack",
    [
        ">" + "<a b='" * 175_000,  # the review's input at the 1 MiB cap
        "<a" * 500_000,
        "<!--" * 250_000,
        "<script>" * 125_000,
        '<a title="' * 100_000,
    ],
)
def test_strip_html_is_linear_on_hostile_input(attack: str) -> None:
    started = time.perf_counter()
    strip_html(attack)
    assert time.perf_counter() - started < 0.5


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=8,
)


@given(items=st.lists(json_values, max_size=30))
def test_uniq_matches_python_liquid(items: list[Any]) -> None:
    assert uniq(items) == liquid_uniq(items)


@given(items=st.lists(st.dictionaries(st.sampled_from(["id", "x"]), json_values, max_size=2), max_size=20))
def test_uniq_by_key_matches_python_liquid(items: list[dict[str, Any]]) -> None:
    ours = uniq(items, "id")
    theirs = liquid_uniq(items, "id")
    assert ours == theirs


def test_uniq_is_linear() -> None:
    started = time.perf_counter()
    assert len(uniq([*range(100_000), *range(100_000)])) == 100_000
    assert len(uniq([{"id": n % 50_000} for n in range(100_000)], "id")) == 50_000
    assert time.perf_counter() - started < 1.0


def _spin() -> None:
    while True:
        pass


def _slow(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)
    return "done"


async def _loop_lag(until: asyncio.Future[Any]) -> float:
    worst = 0.0
    while not until.done():
        began = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - began - 0.005)
    return worst


async def test_a_render_stuck_in_one_call_is_stopped_at_the_deadline_and_the_loop_runs_on() -> None:
    budget = StepBudget(0.5)
    started = time.monotonic()
    stuck = asyncio.ensure_future(budget.run(_spin))
    lag = await _loop_lag(stuck)
    with pytest.raises(TemplateLimitError) as caught:
        await stuck
    assert caught.value.message == TIME_LIMIT_MESSAGE
    assert time.monotonic() - started < 0.5 + 0.3
    assert lag < 0.3, lag
    # The pool carries on: the next step renders as usual.
    assert await StepBudget().run(render, "{{ a | upcase }}", {"a": "ok"}) == "OK"


async def test_the_budget_is_shared_by_all_of_a_steps_renders() -> None:
    budget = StepBudget(1.0)
    assert await budget.run(_slow, 0.4) == "done"
    assert await budget.run(_slow, 0.4) == "done"
    with pytest.raises(TemplateLimitError):
        await budget.run(_slow, 0.4)  # 1.2 s in all: past the step's 1 s
    with pytest.raises(TemplateLimitError):
        await budget.run(render, "{{ a }}", {"a": 1})  # nothing left


async def test_the_sandbox_stops_at_the_step_deadline_not_its_own() -> None:
    budget = StepBudget(0.2)
    burn = (
        "{% for i in (1..500) %}{{ s | replace: 'a', 'b' | replace: 'b', 'a' | upcase | downcase | size }}"
        "{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(TemplateLimitError) as caught:
        await budget.run(render, burn, {"s": "a" * 1_000_000})
    assert time.monotonic() - started < 0.2 + 0.3
    assert caught.value.line == 1  # the sandbox's own check (with a position) ran out first


pieces = st.sampled_from(
    [
        "{{ v }}",
        "{{ v | strip_html }}",
        "{{ v | uniq | join: ',' }}",
        "{{ v | split: '' | sort | join }}",
        "{{ v | replace: 'a', 'aaaaaaaaaa' }}",
        "{% for i in (1..500) %}{{ v | append: v | size }}{% endfor %}",
        "{% assign v = v | append: v %}",
        "{{ v | escape | url_encode | upcase | truncatewords: 3 }}",
        "{{ v | newline_to_br | strip_newlines }}",
        "{% for x in v %}{{ x | size }}{% endfor %}",
        "{{ v | sort_natural | first }}",
        "{{ v | where: 'a' | map: 'a' | compact | size }}",
    ]
)
payloads = st.one_of(
    st.text(max_size=200).map(lambda s: s * 500),
    st.builds(lambda n: "<a b='" * n + ">", st.integers(0, 100_000)),
    st.lists(json_values, max_size=200).map(lambda items: items * 100),
    st.integers(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.lists(pieces, min_size=1, max_size=6).map("".join), value=payloads)
async def test_random_templates_stay_within_the_budget_and_the_output_cap(template: str, value: Any) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.monotonic()
    try:
        output = await StepBudget().run(render, template, {"v": value})
    except TemplateError:
        pass
    else:
        assert len(output) <= MAX_OUTPUT_CHARS
    assert time.monotonic() - started < STEP_RENDER_BUDGET_S + 0.5
    assert process.memory_info().rss - before < 300 * 1024 * 1024
