"""The ISO node catalogue: real pricing-node names of the five ISOs' real-time markets.

Hubs, load zones and aggregated load points as the ISOs publish them (CAISO trading hubs
and default load aggregation points, MISO hubs, PJM hubs and zones, ERCOT hubs and load
zones, NYISO zones). Each node has a typical price level (USD/MWh) that the simulator
moves around; the numbers are plausible, not historical.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # hub | zone | load
    base_price: float  # USD/MWh, the node's typical level


ISO_NODES: dict[str, tuple[Node, ...]] = {
    "CAISO": (
        Node("TH_NP15_GEN-APND", "hub", 42.0), Node("TH_SP15_GEN-APND", "hub", 38.5),
        Node("TH_ZP26_GEN-APND", "hub", 39.0), Node("DLAP_PGAE-APND", "load", 45.0),
        Node("DLAP_SCE-APND", "load", 40.0), Node("DLAP_SDGE-APND", "load", 43.5),
        Node("DLAP_VEA-APND", "load", 37.0)),
    "MISO": (
        Node("INDIANA.HUB", "hub", 33.0), Node("ILLINOIS.HUB", "hub", 30.5),
        Node("MICHIGAN.HUB", "hub", 35.0), Node("MINN.HUB", "hub", 27.5),
        Node("ARKANSAS.HUB", "hub", 29.0), Node("LOUISIANA.HUB", "hub", 31.0),
        Node("TEXAS.HUB", "hub", 30.0), Node("MS.HUB", "hub", 30.5)),
    "PJM": (
        Node("PJM WESTERN HUB", "hub", 36.0), Node("AEP-DAYTON HUB", "hub", 33.5),
        Node("N ILLINOIS HUB", "hub", 31.0), Node("EASTERN HUB", "hub", 38.0),
        Node("DOMINION HUB", "hub", 37.5), Node("NEW JERSEY HUB", "hub", 39.0),
        Node("PSEG", "zone", 40.0), Node("COMED", "zone", 30.0), Node("BGE", "zone", 41.5)),
    "ERCOT": (
        Node("HB_HOUSTON", "hub", 28.0), Node("HB_NORTH", "hub", 27.0),
        Node("HB_SOUTH", "hub", 27.5), Node("HB_WEST", "hub", 22.0),
        Node("HB_BUSAVG", "hub", 26.5), Node("HB_HUBAVG", "hub", 26.0),
        Node("LZ_HOUSTON", "zone", 28.5), Node("LZ_NORTH", "zone", 27.5),
        Node("LZ_SOUTH", "zone", 28.0), Node("LZ_WEST", "zone", 23.0)),
    "NYISO": (
        Node("N.Y.C.", "zone", 48.0), Node("WEST", "zone", 30.0), Node("GENESE", "zone", 29.5),
        Node("CENTRL", "zone", 31.0), Node("NORTH", "zone", 26.0), Node("MHK VL", "zone", 32.0),
        Node("CAPITL", "zone", 36.0), Node("HUD VL", "zone", 39.0), Node("MILLWD", "zone", 41.0),
        Node("DUNWOD", "zone", 43.0), Node("LONGIL", "zone", 52.0)),
}

ISOS: tuple[str, ...] = tuple(ISO_NODES)
