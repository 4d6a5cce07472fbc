"""The monthly AWS bill of a fleet, line by line, and its cost per million readings.

Pure: a :class:`Scenario` (devices, interval, ingest mode, readings per message, and the
storage choices), the prices and the figures measured on moto (:mod:`coldchain.cost.inputs`)
and what Terraform deploys (:class:`Deployment`) go in; a :class:`Bill` of
:class:`LineItem` comes out, each line its quantity times its unit price
(:mod:`coldchain.cost.lines`). Where the scenario leaves the readings table's capacity mode
or table class open, :func:`bill` prices every choice and keeps the cheapest;
:func:`cheapest` also searches modes and batch sizes. No free tier is applied.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import product

from coldchain.cost.inputs import Measured, Prices
from coldchain.cost.lines import price_lines, traffic
from coldchain.cost.scenario import (
    DEFAULT_MAX_DELAY_S,
    MAX_BATCH,
    Bill,
    Capacity,
    Deployment,
    Mode,
    Scenario,
    TableClass,
)


def bill(
    scenario: Scenario, prices: Prices, measured: Measured, deployment: Deployment | None = None
) -> Bill:
    """The monthly bill; an open capacity mode or table class is chosen by total."""
    deployment = deployment or Deployment()
    capacities = [scenario.capacity] if scenario.capacity else list(Capacity)
    classes = [scenario.table_class] if scenario.table_class else list(TableClass)
    bills = [
        _bill(
            replace(scenario, capacity=capacity, table_class=table_class),
            prices,
            measured,
            deployment,
        )
        for capacity, table_class in product(capacities, classes)
    ]
    best = min(bills, key=lambda b: b.monthly)
    others = tuple(
        (f"{b.scenario.capacity}, {b.scenario.table_class}", b.per_million)
        for b in bills
        if b is not best
    )
    return replace(best, alternatives=others)


def cheapest(
    scenario: Scenario,
    prices: Prices,
    measured: Measured,
    *,
    modes: tuple[Mode, ...] = tuple(Mode),
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
    deployment: Deployment | None = None,
) -> Bill:
    """The cheapest bill for ``scenario``'s fleet over modes and batch sizes whose upload
    delay stays within ``max_delay_s`` (batch 1 always), and over the capacity modes and
    table classes ``scenario`` leaves open; its own mode and batch are ignored.
    """
    largest = max(1, min(MAX_BATCH, math.floor(max_delay_s / scenario.interval_s)))
    bills = [
        bill(replace(scenario, mode=mode, batch=batch), prices, measured, deployment)
        for mode in modes
        for batch in range(1, largest + 1)
    ]
    return min(bills, key=lambda b: (b.monthly, b.scenario.batch))


def _bill(s: Scenario, prices: Prices, measured: Measured, deployment: Deployment) -> Bill:
    t = traffic(s, measured, deployment)
    lines, estimate_delta = price_lines(s, t, prices, measured, deployment)
    notes: list[str] = []
    if s.upload_delay_s >= 300:
        notes.append(
            f"{s.batch} readings a message every {s.interval_s:g} s: a device reports every "
            f"{s.upload_delay_s:g} s, at or past the default 5-minute silence alarm."
        )
    elif s.batch > 1:
        notes.append(
            f"Batches of {s.batch}: an excursion reaches the cloud up to "
            f"{s.upload_delay_s - s.interval_s:g} s after it was measured."
        )
    result = Bill(s, t.readings, tuple(lines), tuple(notes))
    return replace(
        result, lambda_estimate_per_million=result.per_million + estimate_delta / t.readings * 1e6
    )
