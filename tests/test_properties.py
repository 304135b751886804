"""Properties that hold for every scenario: conservation, causality, FIFO, utilization bounds."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lbsim

POLICY_NAMES = sorted(lbsim.POLICIES)

groups = st.lists(
    st.fixed_dictionaries(
        {
            "count": st.integers(1, 3),
            "speed": st.sampled_from([0.5, 1.0, 2.0]),
            "workers": st.integers(1, 3),
            "queue": st.one_of(st.none(), st.integers(0, 3)),
            "discipline": st.sampled_from(["fcfs", "ps"]),
            "weight": st.integers(1, 4),
        }
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def scenarios(draw):
    servers = [dict(group, name=f"g{i}") for i, group in enumerate(draw(groups))]
    workload = {
        "arrivals": draw(st.sampled_from(["poisson", "deterministic"])),
        "rate": draw(st.floats(5, 80)),
        "size": draw(st.sampled_from(["exp(30ms)", "det(20ms)", "lognormal(mean=40ms, cv=2)"])),
        "clients": draw(st.integers(1, 50)),
    }
    if draw(st.booleans()):
        workload["timeout"] = draw(st.sampled_from(["50ms", "200ms"]))
    balancer = {"policy": draw(st.sampled_from(POLICY_NAMES))}
    if draw(st.booleans()):
        balancer["retries"] = {
            "max": 2,
            "on": ["connect_failure", "error", "timeout"],
            "try_timeout": "100ms",
        }
        if draw(st.booleans()):
            balancer["retries"]["hedge"] = "30ms"
    if draw(st.booleans()):
        balancer["health_check"] = {"interval": "200ms", "timeout": "100ms"}
    faults = []
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["crash", "hang", "slow", "errors"]))
        fault = {"target": "g0-0", "kind": kind, "at": draw(st.sampled_from([0.1, 0.6])), "duration": 0.5}
        fault |= {"factor": 4} if kind == "slow" else {"probability": 0.5} if kind == "errors" else {}
        faults.append(fault)
    return {
        "name": "prop",
        "duration": draw(st.sampled_from([1.0, 3.0])),
        "warmup": draw(st.sampled_from([0.0, 0.5])),
        "seed": draw(st.integers(0, 1000)),
        "workload": workload,
        "servers": servers,
        "balancer": balancer,
        "faults": faults,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_request_ends_once_and_in_order(data):
    scenario = lbsim.load_scenario(data)
    result = lbsim.simulate(scenario)
    summary = result.summary.loc[0]
    requests = result.requests

    # Conservation: counted arrivals = terminal statuses + still in flight, none negative.
    statuses = ["n_ok", "n_error", "n_rejected", "n_timeout", "n_no_backend", "n_dropped"]
    assert summary["n_requests"] == sum(summary[s] for s in statuses) + summary["n_in_flight"]
    assert summary["n_in_flight"] >= 0
    # Every counted request appears once, one still in flight at the end as in_flight.
    counted = requests[requests["t_arrival"] >= scenario.warmup]
    assert len(counted) == summary["n_requests"]
    assert (counted["status"] == "in_flight").sum() == summary["n_in_flight"]

    # Causality: arrival <= start <= end.
    started = requests.dropna(subset=["t_start"])
    assert (started["t_arrival"] <= started["t_start"] + 1e-12).all()
    ended = requests.dropna(subset=["t_done"])  # in_flight requests have no end
    assert (ended["t_arrival"] <= ended["t_done"] + 1e-12).all()
    ok = requests[requests["status"] == "ok"]
    assert (ok["t_start"] <= ok["t_done"] + 1e-12).all()

    # FIFO: at a first-come first-served server, service starts in arrival order (retries
    # and hedges send later copies of a request, so only runs without them are checked).
    if "retries" in data["balancer"]:
        return
    fcfs = {
        f"{g['name']}-{i}" for g in data["servers"] if g["discipline"] == "fcfs" for i in range(g["count"])
    }
    for server, group in started[started["server"].isin(fcfs)].groupby("server", observed=True):
        starts = group.sort_values(["t_arrival", "t_start"])["t_start"].to_numpy()
        assert np.all(np.diff(starts) >= -1e-12), server

    # Utilization is a fraction.
    assert ((result.servers["utilization"] >= -1e-12) & (result.servers["utilization"] <= 1 + 1e-9)).all()
