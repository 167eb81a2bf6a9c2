"""Travel: a fixed timetable of flights, cities' UTC offsets, hotel rates and date arithmetic.

Times are local wall-clock times written as ISO 8601 without an offset
("2025-05-12T08:30"); dates as "YYYY-MM-DD".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = [
    "add_minutes",
    "days_between",
    "flight_details",
    "flights_from",
    "hotel_rate",
    "utc_offset",
    "weekday",
]

# flight: (origin, destination, local departure, duration in minutes, fare in EUR)
_FLIGHTS = {
    "AX101": ("Lisbon", "Berlin", "2025-05-12T08:30", 215, 129.0),
    "AX102": ("Berlin", "Lisbon", "2025-05-16T18:10", 235, 119.0),
    "AX210": ("Berlin", "Helsinki", "2025-05-13T07:45", 125, 98.0),
    "AX211": ("Helsinki", "Berlin", "2025-05-15T20:05", 140, 104.0),
    "AX305": ("Lisbon", "New York", "2025-05-20T11:00", 460, 420.0),
    "AX306": ("New York", "Lisbon", "2025-05-27T22:15", 405, 395.0),
    "AX410": ("Berlin", "Tokyo", "2025-06-02T13:20", 710, 610.0),
    "AX411": ("Tokyo", "Berlin", "2025-06-10T10:50", 780, 585.0),
    "AX520": ("Lisbon", "Helsinki", "2025-05-12T06:55", 290, 175.0),
    "AX530": ("New York", "Tokyo", "2025-05-28T12:40", 840, 690.0),
    "AX540": ("Helsinki", "Tokyo", "2025-05-14T17:30", 770, 640.0),
}
_UTC_OFFSET = {"Lisbon": 1, "Berlin": 2, "Helsinki": 3, "New York": -4, "Tokyo": 9}
# Spelled out: strftime("%A") follows the process's locale.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HOTEL_RATE = {
    "Lisbon": 95.0,
    "Berlin": 110.0,
    "Helsinki": 135.0,
    "New York": 240.0,
    "Tokyo": 160.0,
}


def _known_city(city: str) -> str:
    if city not in _UTC_OFFSET:
        raise ValueError(f"unknown city {city!r}; known: {', '.join(_UTC_OFFSET)}")
    return city


def flights_from(city: str) -> list[str]:
    """The flight numbers that depart from `city`, sorted.

    Cities: Lisbon, Berlin, Helsinki, New York, Tokyo.
    """
    _known_city(city)
    return sorted(number for number, flight in _FLIGHTS.items() if flight[0] == city)


def flight_details(flight: str) -> dict[str, object]:
    """A flight's origin, destination, local departure time, duration_minutes and fare_eur.

    Example: flight_details("AX101") -> {"flight": "AX101", "origin": "Lisbon",
    "destination": "Berlin", "departure": "2025-05-12T08:30", "duration_minutes": 215,
    "fare_eur": 129.0}. The departure is the origin's local time.
    """
    try:
        origin, destination, departure, minutes, fare = _FLIGHTS[flight]
    except KeyError:
        raise ValueError(f"no flight {flight!r}") from None
    return {
        "flight": flight,
        "origin": origin,
        "destination": destination,
        "departure": departure,
        "duration_minutes": minutes,
        "fare_eur": fare,
    }


def utc_offset(city: str) -> int:
    """The city's offset from UTC in whole hours during the benchmark's dates (e.g. Berlin: 2)."""
    return _UTC_OFFSET[_known_city(city)]


def hotel_rate(city: str) -> float:
    """The price of one hotel night in the city, in EUR."""
    return _HOTEL_RATE[_known_city(city)]


def add_minutes(timestamp: str, minutes: int) -> str:
    """The time `minutes` after `timestamp` ("YYYY-MM-DDTHH:MM"), in the same format.

    Negative minutes go back. Example: add_minutes("2025-05-12T23:30", 45) -> "2025-05-13T00:15"
    """
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M") + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M")


def weekday(day: str) -> str:
    """The weekday's English name of a date "YYYY-MM-DD" (or of a timestamp's date)."""
    return _WEEKDAYS[date.fromisoformat(day[:10]).weekday()]


def days_between(start: str, end: str) -> int:
    """Whole days from date `start` to date `end` ("YYYY-MM-DD"; negative if end is earlier)."""
    return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days
