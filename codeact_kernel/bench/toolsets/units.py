"""Units and currencies: length, mass and temperature conversions and a fixed rate table.

The exchange rates are invented and never change, so every answer is reproducible.
"""

from __future__ import annotations

__all__ = [
    "convert_currency",
    "convert_length",
    "convert_mass",
    "convert_temperature",
    "exchange_rate",
]

_METRES = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "in": 0.0254,
    "ft": 0.3048,
    "yd": 0.9144,
    "mi": 1609.344,
}
_KILOGRAMS = {"g": 0.001, "kg": 1.0, "t": 1000.0, "oz": 0.028349523125, "lb": 0.45359237}
# Units of each currency that one euro buys (a made-up table, fixed for the benchmark).
_PER_EURO = {
    "EUR": 1.0,
    "USD": 1.08,
    "GBP": 0.85,
    "CHF": 0.95,
    "JPY": 160.0,
    "CAD": 1.47,
    "AUD": 1.65,
    "SEK": 11.4,
}


def _factor(table: dict[str, float], unit: str, kind: str) -> float:
    try:
        return table[unit]
    except KeyError:
        known = ", ".join(table)
        raise ValueError(f"unknown {kind} {unit!r}; known: {known}") from None


def convert_length(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between units, rounded to 6 decimals.

    Units: mm, cm, m, km, in, ft, yd, mi. Example: convert_length(1, "mi", "km") -> 1.609344
    """
    metres = value * _factor(_METRES, from_unit, "length unit")
    return round(metres / _factor(_METRES, to_unit, "length unit"), 6)


def convert_mass(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a mass between units, rounded to 6 decimals.

    Units: g, kg, t, oz, lb. Example: convert_mass(2, "lb", "kg") -> 0.907185
    """
    kilograms = value * _factor(_KILOGRAMS, from_unit, "mass unit")
    return round(kilograms / _factor(_KILOGRAMS, to_unit, "mass unit"), 6)


def convert_temperature(value: float, from_scale: str, to_scale: str) -> float:
    """Convert a temperature between scales "C", "F" and "K", rounded to 2 decimals.

    Example: convert_temperature(100, "C", "F") -> 212.0
    """
    to_celsius = {"C": lambda v: v, "F": lambda v: (v - 32) * 5 / 9, "K": lambda v: v - 273.15}
    from_celsius = {"C": lambda c: c, "F": lambda c: c * 9 / 5 + 32, "K": lambda c: c + 273.15}
    for scale in (from_scale, to_scale):
        if scale not in to_celsius:
            raise ValueError(f"unknown temperature scale {scale!r}; known: C, F, K")
    return round(from_celsius[to_scale](to_celsius[from_scale](value)), 2)


def exchange_rate(from_currency: str, to_currency: str) -> float:
    """How many units of `to_currency` one unit of `from_currency` buys, rounded to 6 decimals.

    Currencies: EUR, USD, GBP, CHF, JPY, CAD, AUD, SEK. Example: exchange_rate("EUR", "USD") -> 1.08
    """
    source = _factor(_PER_EURO, from_currency, "currency")
    target = _factor(_PER_EURO, to_currency, "currency")
    return round(target / source, 6)


def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert a sum of money at the fixed rates, rounded to 2 decimals (cents).

    Example: convert_currency(100, "EUR", "GBP") -> 85.0
    """
    source = _factor(_PER_EURO, from_currency, "currency")
    target = _factor(_PER_EURO, to_currency, "currency")
    return round(amount / source * target, 2)
