"""The reference universe of the trading application: fictional listed companies.

Enrichment joins, sector analytics and the simulator all need the same symbol master, so
one ships in the package (``data/reference/symbols.csv`` and ``symbols.parquet``). The
companies are invented: names are built from word lists by a seeded generator, so
``write_reference`` recreates the packaged files exactly and nobody mistakes the data for
real market data. Run it once after changing the word lists::

    python -m surestream.apps.trading.reference src/surestream/data/reference
"""

from __future__ import annotations

import io
import random
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path

import polars as pl

COLUMNS = ("symbol", "company_name", "sector", "industry", "market_cap_tier", "exchange")
TIERS = ("MEGA", "LARGE", "MID", "SMALL")
_TIER_WEIGHTS = (0.08, 0.32, 0.35, 0.25)
_SEED = 20_260_101

#: sector -> (companies in it, industries, nouns that make a company name sound like it)
_SECTORS: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "Information Technology": (16, ("Software", "Semiconductors", "IT Services",
                                    "Technology Hardware"),
                               ("Systems", "Micro", "Logic", "Data", "Silicon", "Software",
                                "Networks", "Computing")),
    "Financials": (14, ("Banks", "Insurance", "Capital Markets", "Consumer Finance"),
                   ("Bancorp", "Financial", "Capital", "Trust", "Assurance", "Partners")),
    "Health Care": (13, ("Pharmaceuticals", "Biotechnology", "Medical Devices",
                         "Health Care Providers"),
                    ("Therapeutics", "Biosciences", "Pharma", "Medical", "Health", "Genomics")),
    "Consumer Discretionary": (12, ("Retail", "Automobiles", "Hotels & Leisure", "Apparel"),
                               ("Motors", "Outfitters", "Resorts", "Brands", "Retail",
                                "Home")),
    "Industrials": (12, ("Aerospace & Defense", "Machinery", "Transportation",
                         "Construction"),
                    ("Aerospace", "Industries", "Machinery", "Logistics", "Freight",
                     "Engineering")),
    "Communication Services": (10, ("Telecom", "Media", "Interactive Media", "Entertainment"),
                               ("Telecom", "Media", "Broadcasting", "Studios", "Interactive")),
    "Consumer Staples": (10, ("Food Products", "Beverages", "Household Products",
                              "Food Retail"),
                         ("Foods", "Beverage", "Farms", "Grocers", "Household")),
    "Energy": (9, ("Oil & Gas", "Energy Equipment", "Refining"),
               ("Petroleum", "Energy", "Drilling", "Oilfield", "Resources")),
    "Materials": (8, ("Chemicals", "Metals & Mining", "Packaging"),
                  ("Chemicals", "Mining", "Materials", "Metals", "Packaging")),
    "Utilities": (8, ("Electric Utilities", "Gas Utilities", "Water Utilities",
                      "Renewable Power"),
                  ("Power", "Electric", "Utilities", "Water", "Renewables")),
    "Real Estate": (8, ("REITs", "Real Estate Services"),
                    ("Properties", "Realty", "Land", "Residential", "Towers")),
}
_FIRST = ("North", "Blue", "Iron", "Silver", "Red", "Stone", "Oak", "Clear", "Bright", "High",
          "Pine", "Star", "Cedar", "Summit", "Harbor", "Eagle", "Granite", "Maple", "River",
          "Sun", "West", "Copper", "Falcon", "Lake")
_SECOND = ("field", "ridge", "gate", "wood", "view", "crest", "brook", "point", "vale",
           "haven", "bridge", "light", "line", "port", "mark", "well")
_FORMS = ("Inc.", "Corp.", "Holdings", "Group", "Co.", "Ltd.")


def _ticker(first: str, second: str, noun: str, taken: set[str]) -> str:
    """A 3-4 letter ticker from the name's parts, unique within ``taken``."""
    a, b, n = first.upper(), second.upper(), noun.upper()
    candidates = [a[0] + b[0] + n[0], a[:2] + b[0] + n[0], a[0] + b[:2] + n[0],
                  a[0] + b[0] + n[:2], a[:3] + n[0], a[:2] + b[:2]]
    candidates += [a[0] + b[0] + n[0] + chr(ord("A") + i) for i in range(26)]
    for c in candidates:
        if c.isalpha() and c not in taken:
            return c
    raise ValueError(f"no free ticker for {first}{second} {noun}")


def build_reference() -> pl.DataFrame:
    """The universe as a frame, sorted by symbol. Deterministic: a fixed seed, no clock."""
    rng = random.Random(_SEED)
    prefixes = [(f, s) for f in _FIRST for s in _SECOND]
    rng.shuffle(prefixes)
    rows: list[tuple[str, ...]] = []
    taken: set[str] = set()
    for sector, (count, industries, nouns) in _SECTORS.items():
        nasdaq_share = 0.7 if sector in ("Information Technology", "Health Care") else 0.3
        for _ in range(count):
            first, second = prefixes.pop()
            noun = rng.choice(nouns)
            ticker = _ticker(first, second, noun, taken)
            taken.add(ticker)
            tier = rng.choices(TIERS, weights=_TIER_WEIGHTS)[0]
            exchange = "NASDAQ" if rng.random() < nasdaq_share else "NYSE"
            rows.append((ticker, f"{first}{second} {noun} {rng.choice(_FORMS)}", sector,
                         rng.choice(industries), tier, exchange))
    frame = pl.DataFrame(rows, schema=list(COLUMNS), orient="row")
    return frame.sort("symbol")


def write_reference(folder: str | Path) -> pl.DataFrame:
    """Write ``symbols.csv`` and ``symbols.parquet`` into ``folder``; return the frame."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    frame = build_reference()
    frame.write_csv(out / "symbols.csv")
    frame.write_parquet(out / "symbols.parquet", statistics=False)
    return frame


@lru_cache(maxsize=1)
def load_reference() -> pl.DataFrame:
    """The packaged universe (from ``symbols.parquet``), one row per symbol."""
    data = (resources.files("surestream") / "data" / "reference" / "symbols.parquet")
    return pl.read_parquet(io.BytesIO(data.read_bytes()))


if __name__ == "__main__":
    written = write_reference(sys.argv[1] if len(sys.argv) > 1 else "data/reference")
    print(f"{written.height} symbols in {written['sector'].n_unique()} sectors")
