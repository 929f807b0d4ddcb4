"""The embedded gateway registry: which EUI is which gateway, and how it may be used.

The reference Gateway Server asks an Identity Server; a daemon running next to its gateways keeps the same facts in
a YAML file the operator edits and reloads with SIGHUP. Unregistered gateways are admitted as `eui-<hex>` with the
fallback plan unless the operator requires registration.

Given the frequency plan store, loading also checks each gateway's plans: every id known, all of one band and,
when duty cycle is enforced, with sub-bands that fit one duty-cycle ledger (`frequency_plans.combine`). A file that
fails is refused as a whole, at start-up and on reload, rather than leaving a gateway that can never get a downlink.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from frequency_plans.combine import check_same_band
from frequency_plans.loader import FrequencyPlan, FrequencyPlanError
from scheduler import OverlappingSubBands
from scheduler.scheduler import build_sub_bands

_ID_PATTERN = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")
_EUI_PATTERN = re.compile(r"^[0-9a-fA-F]{16}$")

DOWNLINK_PATH_CONSTRAINTS = {
    "NONE": 0,
    "DOWNLINK_PATH_CONSTRAINT_NONE": 0,
    "PREFER_OTHER": 1,
    "DOWNLINK_PATH_CONSTRAINT_PREFER_OTHER": 1,
    "NEVER": 2,
    "DOWNLINK_PATH_CONSTRAINT_NEVER": 2,
}


class RegistryError(ValueError):
    """A registry file mistake; the message names the file and the key."""


class PlanLookup(Protocol):
    """What the registry needs of `frequency_plans.FrequencyPlanStore`."""

    def get(self, plan_id: str) -> FrequencyPlan:
        """The plan, or a KeyError (`UnknownFrequencyPlan`) naming the id."""


@dataclasses.dataclass(frozen=True, slots=True)
class AntennaLocation:
    latitude: float
    longitude: float
    altitude: int = 0
    accuracy: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayEntry:
    """What the daemon knows about one gateway before it connects."""

    gateway_id: str
    eui: bytes
    frequency_plan_ids: tuple[str, ...]
    registered: bool = True
    location: AntennaLocation | None = None
    location_public: bool = False
    antenna_gain: float = 0.0
    schedule_downlink_late: bool = False
    enforce_duty_cycle: bool = True
    downlink_path_constraint: int = 0
    forward_crc_failed: bool | None = None


class GatewayRegistry:
    """EUI → `GatewayEntry`, swapped atomically on reload so readers never see a half-loaded file."""

    def __init__(
        self,
        entries: Iterable[GatewayEntry] = (),
        *,
        fallback_frequency_plan: str = "EU_863_870",
        require_registered: bool = False,
        path: str | Path | None = None,
        frequency_plans: PlanLookup | None = None,
    ) -> None:
        self.fallback_frequency_plan = fallback_frequency_plan
        self.require_registered = require_registered
        self.path = Path(path) if path else None
        self.frequency_plans = frequency_plans
        self._by_eui: dict[bytes, GatewayEntry] = {}
        self._by_id: dict[str, GatewayEntry] = {}
        self._replace(entries)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        fallback_frequency_plan: str = "EU_863_870",
        require_registered: bool = False,
        frequency_plans: PlanLookup | None = None,
    ) -> GatewayRegistry:
        return cls(
            load_registry_file(path, fallback_frequency_plan, frequency_plans),
            fallback_frequency_plan=fallback_frequency_plan,
            require_registered=require_registered,
            path=path,
            frequency_plans=frequency_plans,
        )

    def reload(self) -> int:
        """Re-read the file; on error the old registry stays in force and the error propagates."""
        if self.path is None:
            return len(self._by_eui)
        self._replace(load_registry_file(self.path, self.fallback_frequency_plan, self.frequency_plans))
        return len(self._by_eui)

    def _replace(self, entries: Iterable[GatewayEntry]) -> None:
        by_eui: dict[bytes, GatewayEntry] = {}
        by_id: dict[str, GatewayEntry] = {}
        for entry in entries:
            by_eui[entry.eui] = entry
            by_id[entry.gateway_id] = entry
        self._by_eui, self._by_id = by_eui, by_id

    def lookup(self, eui: bytes) -> GatewayEntry | None:
        """The entry for an EUI, a generated one for unknown gateways, or None when registration is required."""
        entry = self._by_eui.get(eui)
        if entry is not None:
            return entry
        if self.require_registered:
            return None
        return GatewayEntry(
            gateway_id="eui-" + eui.hex(),
            eui=eui,
            frequency_plan_ids=(self.fallback_frequency_plan,),
            registered=False,
        )

    def by_id(self, gateway_id: str) -> GatewayEntry | None:
        return self._by_id.get(gateway_id)

    def entries(self) -> list[GatewayEntry]:
        return list(self._by_eui.values())

    def __len__(self) -> int:
        return len(self._by_eui)


def load_registry_file(
    path: str | Path, fallback_frequency_plan: str, frequency_plans: PlanLookup | None = None
) -> list[GatewayEntry]:
    """Parse and check the file; with `frequency_plans`, also check each gateway's plans (see the module doc)."""
    data = _read_yaml(path)
    if isinstance(data, Mapping):
        if "gateways" not in data:
            raise RegistryError(f"{path}: no 'gateways' key; list the gateways under 'gateways:'")
        items = data["gateways"]
    else:
        items = data
    if not isinstance(items, list):
        raise RegistryError(f"{path}: gateways: must be a list")
    entries: list[GatewayEntry] = []
    seen_eui: dict[bytes, int] = {}
    seen_id: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{path}: gateways[{index}]"
        entry = _parse_entry(item, where, fallback_frequency_plan)
        if frequency_plans is not None:
            _check_frequency_plans(entry, item, where, frequency_plans)
        if entry.eui in seen_eui:
            raise RegistryError(f"{where}.eui: duplicate of gateways[{seen_eui[entry.eui]}]")
        if entry.gateway_id in seen_id:
            raise RegistryError(f"{where}.gateway_id: duplicate of gateways[{seen_id[entry.gateway_id]}]")
        seen_eui[entry.eui] = index
        seen_id[entry.gateway_id] = index
        entries.append(entry)
    return entries


def _read_yaml(path: str | Path) -> Any:
    """The parsed document; every way the file can be unusable is a `RegistryError` naming the file.

    A file with no document at all (empty, or only comments) is refused rather than read as "no gateways": that is
    what an editor's half-written save or a truncated copy looks like, and taking it at its word would silently
    turn every registered gateway into an unregistered one (or, with `require_registered`, cut them all off).
    An operator who really wants no gateways writes `gateways: []`.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except IsADirectoryError:
        raise RegistryError(f"{path}: is a directory, not a gateways file") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(
            f"{path}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        raise RegistryError(f"{path}: empty file; list the gateways under 'gateways:' (write 'gateways: []' for none)")
    return data


def _parse_entry(item: Any, where: str, fallback_frequency_plan: str) -> GatewayEntry:
    if not isinstance(item, Mapping):
        raise RegistryError(f"{where}: must be a mapping")
    known = {
        "eui", "gateway_id", "frequency_plan_id", "frequency_plan_ids", "location", "antenna_gain",
        "schedule_downlink_late", "enforce_duty_cycle", "downlink_path_constraint", "forward_crc_failed",
    }
    for key in item:
        if key not in known:
            raise RegistryError(f"{where}.{key}: unknown key")
    eui_text = str(item.get("eui", "")).replace("-", "").replace(":", "")
    if not _EUI_PATTERN.match(eui_text):
        raise RegistryError(f"{where}.eui: must be 16 hex digits")
    eui = bytes.fromhex(eui_text)
    gateway_id = str(item.get("gateway_id") or f"eui-{eui.hex()}")
    if len(gateway_id) > 36 or not _ID_PATTERN.match(gateway_id):
        raise RegistryError(f"{where}.gateway_id: must be 3-36 lowercase letters, digits and single dashes")
    plans: tuple[str, ...]
    if "frequency_plan_ids" in item:
        raw = item["frequency_plan_ids"]
        if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
            raise RegistryError(f"{where}.frequency_plan_ids: must be a non-empty list of plan ids")
        plans = tuple(raw)
    elif "frequency_plan_id" in item:
        plans = (str(item["frequency_plan_id"]),)
    else:
        plans = (fallback_frequency_plan,)
    location = None
    location_public = False
    if "location" in item:
        loc = item["location"]
        if not isinstance(loc, Mapping):
            raise RegistryError(f"{where}.location: must be a mapping")
        try:
            lat = float(loc["latitude"])
            lon = float(loc["longitude"])
            alt = int(loc.get("altitude", 0))
            acc = int(loc.get("accuracy", 0))
        except (KeyError, TypeError, ValueError):
            raise RegistryError(f"{where}.location: needs numeric latitude and longitude") from None
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise RegistryError(f"{where}.location: latitude/longitude out of range")
        location = AntennaLocation(lat, lon, alt, acc)
        location_public = _bool(loc.get("public", False), f"{where}.location.public")
    constraint_raw = str(item.get("downlink_path_constraint", "NONE")).upper()
    if constraint_raw not in DOWNLINK_PATH_CONSTRAINTS:
        raise RegistryError(f"{where}.downlink_path_constraint: one of NONE, PREFER_OTHER, NEVER")
    try:
        gain = float(item.get("antenna_gain", 0.0))
    except (TypeError, ValueError):
        raise RegistryError(f"{where}.antenna_gain: must be a number (dBi)") from None
    crc = item.get("forward_crc_failed")
    return GatewayEntry(
        gateway_id=gateway_id,
        eui=eui,
        frequency_plan_ids=plans,
        location=location,
        location_public=location_public,
        antenna_gain=gain,
        schedule_downlink_late=_bool(item.get("schedule_downlink_late", False), f"{where}.schedule_downlink_late"),
        enforce_duty_cycle=_bool(item.get("enforce_duty_cycle", True), f"{where}.enforce_duty_cycle"),
        downlink_path_constraint=DOWNLINK_PATH_CONSTRAINTS[constraint_raw],
        forward_crc_failed=None if crc is None else _bool(crc, f"{where}.forward_crc_failed"),
    )


def _check_frequency_plans(entry: GatewayEntry, item: Mapping[str, Any], where: str, store: PlanLookup) -> None:
    """Refuse unknown plan ids and plans that one gateway cannot combine, naming the key that listed them."""
    key = "frequency_plan_ids" if "frequency_plan_ids" in item else "frequency_plan_id"
    plans = []
    for plan_id in entry.frequency_plan_ids:
        try:
            plans.append(store.get(plan_id))
        except KeyError:
            raise RegistryError(f"{where}.{key}: unknown frequency plan {plan_id!r}") from None
    try:
        check_same_band(plans)
    except FrequencyPlanError as exc:
        raise RegistryError(f"{where}.{key}: {exc}") from None
    if entry.enforce_duty_cycle:  # one duty-cycle ledger over all the plans' sub-bands: the scheduler's own rule
        try:
            build_sub_bands([sb for plan in plans for sb in plan.sub_bands])
        except OverlappingSubBands as exc:
            clash = f"{exc.attributes.get('min_frequency')}-{exc.attributes.get('max_frequency')} Hz"
            raise RegistryError(
                f"{where}.{key}: frequency plans {', '.join(p.id for p in plans)} have overlapping sub-bands "
                f"({clash}); sub-bands of combined plans must be identical or disjoint"
            ) from None


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RegistryError(f"{where}: must be true or false")
