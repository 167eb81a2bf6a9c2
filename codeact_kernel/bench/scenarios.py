"""The data suite's scenarios: seeded, generated data sets that several questions share.

Pure Python (`random.Random` with a fixed seed, the csv module) so that the data, and
so every expected answer, is the same on every machine and every pandas version. The
kernel runs `tasks.scenario_setup(name)`, which calls these.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

__all__ = ["sensor_readings", "write_grades", "write_sales"]

_PRODUCTS = {"A": 4.5, "B": 12.0, "C": 7.25, "D": 30.0, "E": 1.8}
_REGIONS = ("North", "South", "East", "West")
_FIRST = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jae", "Kim", "Lea")
_LAST = ("Moss", "Nair", "Ortiz", "Park", "Quinn", "Reyes")


def write_sales(directory: str) -> str:
    """Write `sales.csv` (200 orders, January to June 2025) into `directory`; return its path."""
    rng = random.Random(12)
    rows = []
    for order in range(1, 201):
        product = rng.choice(sorted(_PRODUCTS))
        rows.append(
            {
                "order_id": order,
                "date": f"2025-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}",
                "region": rng.choice(_REGIONS),
                "product": product,
                "units": rng.randint(1, 20),
                "unit_price": _PRODUCTS[product],
            }
        )
    return _write(Path(directory) / "sales.csv", rows)


def write_grades(directory: str) -> str:
    """Write `grades.csv` (one row per student: name, class, three subjects' scores)."""
    rng = random.Random(7)
    rows = []
    for index, first in enumerate(_FIRST * 3):
        rows.append(
            {
                "name": f"{first} {_LAST[(index // len(_FIRST) + index) % len(_LAST)]}",
                "class": "ABC"[index % 3],
                "math": rng.randint(45, 100),
                "physics": rng.randint(40, 100),
                "literature": rng.randint(50, 100),
            }
        )
    return _write(Path(directory) / "grades.csv", rows)


def sensor_readings() -> Any:
    """A DataFrame of hourly temperatures from four sensors over two days, some missing."""
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "The data suite needs pandas in the kernel's environment: "
            "pip install 'codeact-kernel[bench]'"
        ) from None

    rng = random.Random(3)
    base = {"S1": 18.0, "S2": 21.5, "S3": 16.0, "S4": 24.0}
    rows = []
    for hour in range(48):
        for sensor, level in base.items():
            daily = 4.0 if 10 <= hour % 24 <= 17 else 0.0
            value: float | None = round(level + daily + rng.gauss(0, 2.5), 2)
            if rng.random() < 0.06:
                value = None
            rows.append({"sensor": sensor, "hour": hour, "temperature": value})
    return pd.DataFrame(rows)


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)
