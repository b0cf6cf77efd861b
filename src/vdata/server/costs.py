"""The transparency ledger: monthly running costs and donations, entered by the operator
(`vdata costs add`), append-only (a correction is a new, possibly negative, entry), shown on /about as a
table and a server-rendered SVG chart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, Text, func, select

from vdata.server.store import now_utc

metadata = MetaData()
operating_cost = Table(
    "operating_cost",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),
    Column("item", String(40), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Column("entered_at", String(40), nullable=False),
)

COST_ITEMS = ("hosting", "storage", "domain", "other")
DONATIONS = "donations"
MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_AMOUNT = Decimal("1000000")


def check_month(month: str) -> str:
    if not MONTH_PATTERN.match(month):
        raise ValueError(f"month {month!r} is not YYYY-MM (e.g. 2026-11)")
    return month


def to_cents(amount: str | float | Decimal, item: str) -> int:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"--{item} {amount!r} is not an amount; write e.g. 12.50") from None
    if not value.is_finite() or abs(value) > MAX_AMOUNT or value != value.quantize(Decimal("0.01")):
        raise ValueError(f"--{item} {amount}: give an amount of at most 1,000,000 with at most 2 decimals")
    return int(value * 100)


def add_entries(engine: Engine, month: str, amounts: dict[str, int], note: str = "") -> None:
    """Append one entry per item of `amounts` (cents) for `month`, in one transaction."""
    check_month(month)
    unknown = set(amounts) - {*COST_ITEMS, DONATIONS}
    if unknown:
        raise ValueError(f"unknown items {sorted(unknown)}; use {', '.join((*COST_ITEMS, DONATIONS))}")
    if not amounts:
        raise ValueError("nothing to add: give at least one amount, e.g. --hosting 12.50")
    at = now_utc()
    with engine.begin() as conn:
        conn.execute(
            operating_cost.insert(),
            [
                {"month": month, "item": k, "amount_cents": v, "note": note, "entered_at": at}
                for k, v in amounts.items()
            ],
        )


@dataclass
class MonthLedger:
    month: str
    costs: dict[str, int] = field(default_factory=dict)  # item -> cents
    donations: int = 0

    @property
    def total_costs(self) -> int:
        return sum(self.costs.values())

    @property
    def balance(self) -> int:
        return self.donations - self.total_costs


def ledger(engine: Engine) -> list[MonthLedger]:
    """Sums per month and item, oldest month first."""
    c = operating_cost.c
    months: dict[str, MonthLedger] = {}
    with engine.connect() as conn:
        for month, item, cents in conn.execute(
            select(c.month, c.item, func.sum(c.amount_cents)).group_by(c.month, c.item).order_by(c.month)
        ):
            entry = months.setdefault(month, MonthLedger(month))
            if item == DONATIONS:
                entry.donations = int(cents)
            else:
                entry.costs[item] = int(cents)
    return list(months.values())


def money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


@dataclass(frozen=True)
class Chart:
    """Geometry of the costs/donations bar chart (drawn as SVG by the about template)."""

    width: int
    height: int
    bars: list[dict[str, Any]]
    ticks: list[dict[str, Any]]
    baseline: float


def chart(months: list[MonthLedger], *, width: int = 640, height: int = 220) -> Chart:
    """Two bars per month (costs, donations) on a shared scale; only numbers and YYYY-MM labels."""
    left, bottom, top = 48, 28, 12
    plot_h = height - bottom - top
    peak = max([1, *(m.total_costs for m in months), *(m.donations for m in months)])
    slot = (width - left - 8) / max(1, len(months))
    bar_w = max(4.0, min(28.0, slot / 2 - 4))
    bars: list[dict[str, Any]] = []
    for i, m in enumerate(months):
        x0 = left + i * slot + (slot - 2 * bar_w - 2) / 2
        for k, (kind, cents) in enumerate((("costs", m.total_costs), ("donations", m.donations))):
            h = max(0.0, cents) / peak * plot_h
            bars.append(
                {
                    "kind": kind,
                    "x": round(x0 + k * (bar_w + 2), 1),
                    "y": round(top + plot_h - h, 1),
                    "w": round(bar_w, 1),
                    "h": round(h, 1),
                    "title": f"{m.month} {kind}: {money(cents)}",
                    "label": m.month if kind == "donations" else None,
                    "label_x": round(x0 + bar_w + 1, 1),
                }
            )
    ticks = [
        {"y": round(top + plot_h - f * plot_h, 1), "label": money(int(peak * f))} for f in (0.0, 0.5, 1.0)
    ]
    return Chart(width, height, bars, ticks, top + plot_h)
