"""OTEL_TRACES_SAMPLER[_ARG]: the decisions of OpenTelemetry's own samplers, on our ids."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace import sampling
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from prompt_middleware.tracing.sampler import sampler_from_environ
from tests.tracing.conftest import MemoryTracing

CALLER_SPAN = "b7ad6b7169203331"


def _sdk_decision(sampler: sampling.Sampler, trace_id: int, parent_sampled: bool | None) -> bool:
    context = None
    if parent_sampled is not None:
        flags = TraceFlags(TraceFlags.SAMPLED if parent_sampled else TraceFlags.DEFAULT)
        parent = SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=flags)
        context = set_span_in_context(NonRecordingSpan(parent))
    decision = sampler.should_sample(context, trace_id, "chat").decision
    return decision is sampling.Decision.RECORD_AND_SAMPLE


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("always_on", None),
        ("always_off", None),
        ("traceidratio", "0.25"),
        ("traceidratio", "0"),
        ("traceidratio", "1"),
        ("parentbased_always_on", None),
        ("parentbased_always_off", None),
        ("parentbased_traceidratio", "0.5"),
        (None, None),  # the default: parentbased_always_on
    ],
)
def test_the_same_decisions_as_opentelemetrys_samplers(
    name: str | None, argument: str | None
) -> None:
    environ = {}
    if name is not None:
        environ["OTEL_TRACES_SAMPLER"] = name
    if argument is not None:
        environ["OTEL_TRACES_SAMPLER_ARG"] = argument
    ours = sampler_from_environ(environ)
    theirs = _sdk_sampler(name, argument)
    generator = random.Random(23)
    for _ in range(2000):
        trace_id = generator.getrandbits(128)
        for parent_sampled in (None, True, False):
            assert ours.sampled(trace_id, parent_sampled) == _sdk_decision(
                theirs, trace_id, parent_sampled
            ), (trace_id, parent_sampled)


def _sdk_sampler(name: str | None, argument: str | None) -> sampling.Sampler:
    ratio = float(argument) if argument is not None else 1.0
    root = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
    }
    name = name or "parentbased_always_on"
    if name.startswith("parentbased_"):
        return sampling.ParentBased(root[name.removeprefix("parentbased_")])
    return root[name]


async def test_a_ratio_samples_the_traces_below_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    memory = MemoryTracing()
    low = "0" * 16 + "7" + "f" * 15  # low 64 bits just under 2**63: sampled at 0.5
    high = "f" * 16 + "8" + "0" * 15  # just over: left out
    try:
        kept = memory.tracing.start(
            {}, prompt=None, start_ns=1, traceparent=f"00-{low}-{CALLER_SPAN}-00"
        )
        left = memory.tracing.start(
            {}, prompt=None, start_ns=1, traceparent=f"00-{high}-{CALLER_SPAN}-01"
        )
        kept.end()
        left.end()
        assert (kept.sampled, left.sampled) == (True, False)
        assert kept.trace_headers()["traceparent"].endswith("-01")
        assert left.trace_headers()["traceparent"].endswith("-00")
        [span] = memory.spans()
        assert span.context is not None
        assert f"{span.context.trace_id:032x}" == low
    finally:
        await memory.tracing.aclose()
