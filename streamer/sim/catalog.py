"""A site's points: names, metadata and per-point signal parameters, as a pure function of the config.

A building is laid out in blocks (an AHU with its VAVs and fan coils) plus a central plant every few
blocks, until the site has ``points`` configured points plus ``extra_share`` more that the API
serves samples for but does not list as configured. Which points are extra, disabled by default, or
sampled on a millisecond phase is chosen by ranking a keyed hash of the name, so the counts are exact
and the choice is stable. Items are in the vendor's shape (``vendor.py``), with a null in each nullable
field on ``null_share`` of the configured points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from streamer.sim.checksum import prefix_lin
from streamer.sim.config import SimConfig
from streamer.sim.keyed import hash64, rank_mask
from streamer.sim.vendor import client_of, dress_points

ANALOG, BINARY, MULTISTATE = 0, 1, 2
_TYPE_NAMES = {ANALOG: "analog", BINARY: "binary", MULTISTATE: "multistate"}

# name, type, unit, base, amplitude, noise, resolution (engineering units), tags, BACnet object name.
# Binary points: base is the share of the day they are on, noise the flips per thousand samples.
# Multistate points: base is the number of states.
Measure = tuple[str, int, str | None, float, float, float, float, str, str]
_T = "temp sensor"
EQUIPMENT: dict[str, tuple[Measure, ...]] = {
    "ahu": (
        ("supply_air_temp", ANALOG, "degF", 55, 3, 0.4, 0.1, f"supply air {_T}", "SA-T"),
        ("return_air_temp", ANALOG, "degF", 72, 2, 0.3, 0.1, f"return air {_T}", "RA-T"),
        ("mixed_air_temp", ANALOG, "degF", 62, 5, 0.5, 0.1, f"mixed air {_T}", "MA-T"),
        ("outside_air_temp", ANALOG, "degF", 50, 15, 0.5, 0.1, f"outside air {_T}", "OA-T"),
        ("supply_air_temp_sp", ANALOG, "degF", 55, 1, 0, 0.5, "supply air temp sp", "SAT-SP"),
        ("duct_static_press", ANALOG, "inH2O", 1.5, 0.3, 0.05, 0.001, "duct pressure sensor", "DSP"),
        ("duct_static_press_sp", ANALOG, "inH2O", 1.5, 0, 0, 0.01, "duct pressure sp", "DSP-SP"),
        ("supply_fan_speed", ANALOG, "%", 65, 20, 2, 0.1, "supply fan speed cmd", "SF-SPD"),
        ("supply_fan_status", BINARY, None, 0.6, 0, 2, 0, "supply fan run sensor", "SF-S"),
        ("return_fan_speed", ANALOG, "%", 60, 20, 2, 0.1, "return fan speed cmd", "RF-SPD"),
        ("cooling_valve_pos", ANALOG, "%", 40, 40, 3, 1, "cool valve cmd", "CLG-VLV"),
        ("heating_valve_pos", ANALOG, "%", 10, 10, 2, 1, "heat valve cmd", "HTG-VLV"),
        ("outside_air_damper_pos", ANALOG, "%", 30, 15, 1, 1, "outside air damper cmd", "OAD"),
        ("filter_dp", ANALOG, "inH2O", 0.45, 0.05, 0.01, 0.001, "filter pressure sensor", "FLT-DP"),
        ("supply_air_flow", ANALOG, "cfm", 12000, 4000, 150, 1, "supply air flow sensor", "SA-CFM"),
        ("occupancy_mode", MULTISTATE, None, 4, 0, 0, 0, "occupied mode", "OCC-MODE"),
    ),
    "vav": (
        ("zone_temp", ANALOG, "degF", 72, 2, 0.3, 0.01, f"zone air {_T}", "ZN-T"),
        ("zone_temp_sp", ANALOG, "degF", 72, 2, 0, 0.5, "zone air temp sp", "ZN-SP"),
        ("discharge_air_temp", ANALOG, "degF", 60, 6, 0.5, 0.1, f"discharge air {_T}", "DA-T"),
        ("airflow", ANALOG, "cfm", 450, 200, 20, 1, "air flow sensor", "FLOW"),
        ("airflow_sp", ANALOG, "cfm", 450, 200, 0, 10, "air flow sp", "FLOW-SP"),
        ("damper_pos", ANALOG, "%", 50, 30, 2, 1, "damper cmd", "DMPR"),
        ("reheat_valve_pos", ANALOG, "%", 15, 15, 2, 1, "reheat valve cmd", "RH-VLV"),
        ("occupancy", BINARY, None, 0.45, 0, 1, 0, "occupied sensor", "OCC"),
        ("zone_co2", ANALOG, "ppm", 650, 200, 20, 1, "zone co2 sensor", "CO2"),
    ),
    "fcu": (
        ("zone_temp", ANALOG, "degF", 71, 2, 0.3, 0.01, f"zone air {_T}", "ZN-T"),
        ("fan_status", BINARY, None, 0.5, 0, 2, 0, "fan run sensor", "FAN-S"),
        ("fan_speed", MULTISTATE, None, 3, 0, 0, 0, "fan speed cmd", "FAN-SPD"),
        ("valve_pos", ANALOG, "%", 30, 30, 2, 1, "valve cmd", "VLV"),
        ("discharge_air_temp", ANALOG, "degF", 62, 6, 0.5, 0.1, f"discharge air {_T}", "DA-T"),
    ),
    "chiller": (
        ("chw_supply_temp", ANALOG, "degF", 44, 1, 0.2, 0.1, f"chilled water leaving {_T}", "CHWS-T"),
        ("chw_return_temp", ANALOG, "degF", 54, 2, 0.2, 0.1, f"chilled water entering {_T}", "CHWR-T"),
        ("cw_supply_temp", ANALOG, "degF", 85, 3, 0.3, 0.1, f"condenser water entering {_T}", "CWS-T"),
        ("cw_return_temp", ANALOG, "degF", 95, 3, 0.3, 0.1, f"condenser water leaving {_T}", "CWR-T"),
        ("power", ANALOG, "kW", 250, 150, 5, 0.001, "elec power sensor", "KW"),
        ("percent_load", ANALOG, "%", 60, 30, 2, 0.1, "load sensor", "LOAD"),
        ("run_status", BINARY, None, 0.55, 0, 1, 0, "run sensor", "RUN"),
        ("alarm", BINARY, None, 0.0, 0, 3, 0, "alarm sensor", "ALM"),
        ("chw_flow", ANALOG, "gpm", 800, 200, 10, 0.1, "chilled water flow sensor", "CHW-GPM"),
    ),
    "boiler": (
        ("hw_supply_temp", ANALOG, "degF", 160, 10, 1, 0.1, f"hot water leaving {_T}", "HWS-T"),
        ("hw_return_temp", ANALOG, "degF", 140, 10, 1, 0.1, f"hot water entering {_T}", "HWR-T"),
        ("firing_rate", ANALOG, "%", 40, 30, 3, 1, "firing rate cmd", "FIRE"),
        ("run_status", BINARY, None, 0.4, 0, 1, 0, "run sensor", "RUN"),
        ("gas_flow", ANALOG, "cfh", 900, 400, 30, 1, "gas flow sensor", "GAS"),
    ),
    "pump": (
        ("speed", ANALOG, "%", 70, 20, 2, 0.1, "pump speed cmd", "SPD"),
        ("run_status", BINARY, None, 0.7, 0, 1, 0, "pump run sensor", "RUN"),
        ("diff_press", ANALOG, "psi", 12, 3, 0.3, 0.01, "water pressure sensor", "DP"),
    ),
    "cooling_tower": (
        ("fan_speed", ANALOG, "%", 55, 35, 3, 0.1, "fan speed cmd", "CT-SPD"),
        ("basin_temp", ANALOG, "degF", 80, 5, 0.5, 0.1, f"condenser water {_T}", "BSN-T"),
        ("run_status", BINARY, None, 0.5, 0, 1, 0, "run sensor", "RUN"),
    ),
    "meter": (
        ("power", ANALOG, "kW", 400, 200, 10, 0.001, "elec power sensor", "KW"),
        ("energy", ANALOG, "kWh", 1_250_000, 500, 0, 0.001, "elec energy sensor", "KWH"),
        ("voltage", ANALOG, "V", 480, 5, 1, 0.1, "elec volt sensor", "VOLT"),
        ("current", ANALOG, "A", 300, 150, 10, 0.01, "elec current sensor", "AMP"),
        ("power_factor", ANALOG, None, 0.92, 0.03, 0.01, 0.001, "elec pf sensor", "PF"),
    ),
}
_BLOCK = ("ahu", *["vav"] * 10, "fcu", "fcu")
_PLANT = ("chiller", "boiler", "pump", "pump", "cooling_tower", "meter")
_PLANT_EVERY = 6


@dataclass(frozen=True, eq=False)
class Catalog:
    """Every point of one site, configured or extra; arrays are indexed by point number ``j``."""

    site: str
    names: tuple[str, ...]
    index: dict[str, int]
    items: tuple[dict[str, Any], ...]  # configured_points items (vendor shape) without collect_enabled
    configured: npt.NDArray[np.bool_]
    default_enabled: npt.NDArray[np.bool_]
    null_enabled: npt.NDArray[np.bool_]  # points whose collect_enabled is null while they are collected
    phase_ms: npt.NDArray[np.int64]
    key: npt.NDArray[np.uint64]
    ptype: npt.NDArray[np.int64]
    base: npt.NDArray[np.int64]  # milli units; binary: on-minutes per day; multistate: states
    amp: npt.NDArray[np.int64]
    noise: npt.NDArray[np.int64]  # milli units; binary: flips per thousand
    res: npt.NDArray[np.int64]
    shift: npt.NDArray[np.int64]  # minutes added to the time of day, so points peak apart
    by_phase: npt.NDArray[np.int64]  # point numbers ordered by (phase, j): the interleaved order
    phase_sorted: npt.NDArray[np.int64]
    crc_lin: npt.NDArray[np.uint32]  # see checksum.key_checksums

    @property
    def size(self) -> int:
        return len(self.names)

    def configured_names(self) -> list[str]:
        return [n for n, c in zip(self.names, self.configured.tolist(), strict=True) if c]


def _layout(site: str, total: int) -> list[tuple[str, int, str, Measure]]:
    """(point name, device number, equipment label, measure) until ``total`` points exist."""
    out: list[tuple[str, int, str, Measure]] = []
    counters: dict[str, int] = {}
    block = 0
    while len(out) < total:
        kinds = _BLOCK + (_PLANT if block % _PLANT_EVERY == _PLANT_EVERY - 1 else ())
        for kind in kinds:
            counters[kind] = counters.get(kind, 0) + 1
            equip = f"{kind}_{counters[kind]}"
            device = 1000 + sum(counters.values())
            out.extend((f"{site}/{equip}/{m[0]}", device, equip, m) for m in EQUIPMENT[kind])
        block += 1
    return out[:total]


def _item(site: str, name: str, device: int, equip: str, measure: Measure, obj_index: int) -> dict[str, Any]:
    _, ptype, unit, *_, tags, abbrev = measure
    words = tags.split()
    if ptype == BINARY:
        object_type = "binaryInput"
    elif ptype == MULTISTATE:
        object_type = "multiStateValue"
    else:
        object_type = "analogValue" if "sp" in words else "analogOutput" if "cmd" in words else "analogInput"
    return {
        "name": name,
        "site": site,
        "client": client_of(site),
        "marker_tags": [equip.rsplit("_", 1)[0], "point", *words],
        "kv_tags": {"unit": unit} if unit else {},
        "point_type": _TYPE_NAMES[ptype],
        "bacnet_data": {
            "device_id": device,
            "object_type": object_type,
            "object_index": obj_index,
            "object_name": abbrev,
            "device_name": equip.upper().replace("_", "-"),
        },
    }


def catalog_of(config: SimConfig, site: str) -> Catalog:
    """The catalog of ``site`` under ``config`` (cached: only the model knobs matter)."""
    return _build(
        config.seed, site, config.points, config.extra_share, config.disabled_share,
        config.interval_s, config.ms_phase_share, config.null_share,
    )  # fmt: skip


@lru_cache(maxsize=64)
def _build(
    seed: int, site: str, points: int, extra_share: float, disabled_share: float,
    interval_s: int, ms_phase_share: float, null_share: float,
) -> Catalog:  # fmt: skip
    total = points + round(points * extra_share)
    layout = _layout(site, total)
    names = tuple(name for name, *_ in layout)
    everyone = np.ones(total, dtype=bool)
    extra = rank_mask([hash64(seed, "extra", n) for n in names], total - points, everyone)
    configured = ~extra
    disabled = rank_mask(
        [hash64(seed, "disabled", n) for n in names], round(points * disabled_share), configured
    )
    ms_phase = rank_mask([hash64(seed, "ms", n) for n in names], round(total * ms_phase_share), everyone)
    hashes = [hash64(seed, "point", n) for n in names]
    phase_s = np.array([h % interval_s for h in hashes], dtype=np.int64)
    sub_ms = np.array([1 + (h >> 20) % 999 for h in hashes], dtype=np.int64)
    phase_ms = phase_s * 1000 + np.where(ms_phase, sub_ms, 0)
    by_phase = np.lexsort((np.arange(total), phase_ms)).astype(np.int64)
    params = np.array([_params(m, h) for (*_, m), h in zip(layout, hashes, strict=True)], dtype=np.int64)
    obj_counters: dict[tuple[int, str], int] = {}
    items = []
    for name, device, equip, measure in layout:
        item = _item(site, name, device, equip, measure, 0)
        slot = (device, item["bacnet_data"]["object_type"])
        obj_counters[slot] = obj_counters.get(slot, 0) + 1
        item["bacnet_data"]["object_index"] = obj_counters[slot]
        items.append(item)
    keys = np.array(hashes, dtype=np.uint64)
    enabled = configured & ~disabled
    listed, null_enabled = dress_points(seed, site, items, keys, configured, enabled, null_share, interval_s)
    return Catalog(
        site=site, names=names, index={n: j for j, n in enumerate(names)}, items=listed,
        configured=configured, default_enabled=enabled, null_enabled=null_enabled, phase_ms=phase_ms,
        key=keys, ptype=params[:, 0], base=params[:, 1],
        amp=params[:, 2], noise=params[:, 3], res=params[:, 4], shift=params[:, 5],
        by_phase=by_phase, phase_sorted=phase_ms[by_phase],
        crc_lin=prefix_lin([f"{site}/{n}@".encode() for n in names]),
    )  # fmt: skip


def _params(measure: Measure, h: int) -> tuple[int, int, int, int, int, int]:
    """(type, base, amplitude, noise, resolution, shift) as integers; a small per-point offset."""
    _, ptype, _, base, amp, noise, res, _, _ = measure
    shift = (h >> 32) % 1440
    if ptype == BINARY:
        return ptype, round(base * 1440), 0, round(noise), 1, shift
    if ptype == MULTISTATE:
        return ptype, int(base), 0, 0, 1000, shift
    res_milli = max(1, round(res * 1000))
    jitter = round(amp * 1000 * (((h >> 40) % 201) - 100) / 1000)  # within ±10 % of the amplitude
    return ptype, round(base * 1000) + jitter, round(amp * 1000), round(noise * 1000), res_milli, shift
