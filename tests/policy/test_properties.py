"""Property tests: consent is monotone, unknown places never keep more than known ones."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from tests.policy._helpers import policy, recording

from voicepriv.model import ConsentEvent, ConsentMethod, ConsentState, Direction, Role
from voicepriv.policy.decision import Decision, decide
from voicepriv.policy.jurisdictions import load_jurisdictions

PURPOSES = ["documentation", "quality_assurance", "training", "legal_compliance"]
CODES = ["US-NY", "US-CA", "US-FL", "US-MD", "US-WA", "DK", "DE", "GB", "FR", "CA", "AU-NSW"]
POLICIES = {
    "dk": policy(),
    "dk_opt_out": policy(qa_extra='opt_out = true\nopt_out_guidance = "updated guidance"'),
    "us": policy(establishment="US-NY"),
    "de": policy(
        establishment="DE", employee_basis="contract", org_extra='works_council_agreement = "BV"'
    ),
    "gb_agent_only": policy(establishment="GB", agent_only=True),
}  # fmt: skip
DURATION = 200.0


def events(states: st.SearchStrategy[ConsentState]) -> st.SearchStrategy[ConsentEvent]:
    return st.builds(
        ConsentEvent,
        role=st.just(Role.CUSTOMER),
        purpose=st.sampled_from(PURPOSES),
        state=states,
        method=st.sampled_from(list(ConsentMethod)),
        offset=st.integers(0, 2000).map(lambda ds: timedelta(seconds=ds / 10)),
        notice_version=st.sampled_from(["v1", None, "v0"]),
        conditional_service=st.booleans(),
    )


any_events = st.lists(events(st.sampled_from(list(ConsentState))), max_size=6)
grants = events(st.just(ConsentState.GRANTED))
stops = events(st.sampled_from([ConsentState.REFUSED, ConsentState.WITHDRAWN]))
calls = st.fixed_dictionaries(
    {
        "agent": st.sampled_from(CODES),
        "customer": st.sampled_from(CODES),
        "direction": st.sampled_from(list(Direction)),
        "policy": st.sampled_from(sorted(POLICIES)),
    }
)


def coverage(d: Decision) -> dict[tuple[str, str], float]:
    """Seconds kept per (track, purpose)."""
    return {
        (t.role.value, k.purpose): sum(s.duration for s in k.segments)
        for t in d.tracks
        for k in t.purposes
    }


def at_most(small: Decision, big: Decision) -> bool:
    """Whether *small* keeps nothing that *big* does not (per track, purpose and second)."""
    big_cov = coverage(big)
    for key, seconds in coverage(small).items():
        if seconds > big_cov.get(key, 0.0) + 1e-9:
            return False
    for role in (Role.AGENT, Role.CUSTOMER):
        for kept in small.track(role).purposes:
            other = big.track(role).purpose(kept.purpose)
            assert other is not None
            for seg in kept.segments:
                if not any(o.start <= seg.start and seg.end <= o.end for o in other.segments):
                    return False
    return True


def run(call: dict[str, object], consents: list[ConsentEvent]) -> Decision:
    rec = recording(
        agent=call["agent"],  # type: ignore[arg-type]
        customer=call["customer"],  # type: ignore[arg-type]
        direction=call["direction"],  # type: ignore[arg-type]
        consents=tuple(consents),
        duration=DURATION,
    )
    return decide(rec, POLICIES[call["policy"]])  # type: ignore[index]


@given(calls, any_events, grants)
def test_adding_a_grant_never_keeps_less(
    call: dict[str, object], base: list[ConsentEvent], extra: ConsentEvent
) -> None:
    assert at_most(run(call, base), run(call, [*base, extra]))


@given(calls, any_events, grants)
def test_removing_a_grant_never_keeps_more(
    call: dict[str, object], base: list[ConsentEvent], extra: ConsentEvent
) -> None:
    with_grant = run(call, [extra, *base])
    assert at_most(run(call, base), with_grant)


@given(calls, any_events, stops)
def test_adding_a_refusal_or_withdrawal_never_keeps_more(
    call: dict[str, object], base: list[ConsentEvent], extra: ConsentEvent
) -> None:
    assert at_most(run(call, [*base, extra]), run(call, base))


@given(calls, any_events, st.sampled_from([None, "US-XX", "ZZ", "BR"]))
def test_unknown_jurisdiction_never_keeps_more_than_the_strictest_known(
    call: dict[str, object], consents: list[ConsentEvent], unknown: str | None
) -> None:
    unknown_call = {**call, "customer": unknown}
    d_unknown = run(unknown_call, consents)
    for code in load_jurisdictions():
        known = run({**call, "customer": code}, consents)
        assert at_most(d_unknown, known), code
