"""A small shop: a product catalogue, coupons and shipping rates, all fixed.

Prices are in euros; weights in kilograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "coupon_discount",
    "list_category",
    "product_details",
    "search_products",
    "shipping_cost",
]


@dataclass(frozen=True)
class _Product:
    name: str
    category: str
    price: float
    weight_kg: float
    stock: int


_CATALOGUE = {
    "TEA-101": _Product("Green tea, 100 g", "tea", 4.50, 0.12, 40),
    "TEA-102": _Product("Black tea, 250 g", "tea", 7.20, 0.28, 12),
    "TEA-103": _Product("Oolong tea, 100 g", "tea", 9.80, 0.12, 0),
    "TEA-104": _Product("Chamomile tea, 50 g", "tea", 3.10, 0.06, 25),
    "MUG-201": _Product("Stoneware mug", "kitchen", 12.00, 0.45, 18),
    "POT-202": _Product("Glass teapot, 1 l", "kitchen", 24.90, 0.80, 6),
    "KET-203": _Product("Electric kettle", "kitchen", 39.00, 1.30, 9),
    "SCL-204": _Product("Kitchen scale", "kitchen", 19.50, 0.70, 0),
    "BK-301": _Product("The Tea Atlas (book)", "books", 28.00, 0.95, 7),
    "BK-302": _Product("Brewing at Home (book)", "books", 16.40, 0.50, 14),
    "BK-303": _Product("Herbal Notes (book)", "books", 11.90, 0.35, 3),
    "CUP-401": _Product("Travel cup", "outdoor", 15.00, 0.30, 22),
    "FLK-402": _Product("Vacuum flask, 0.5 l", "outdoor", 27.50, 0.60, 11),
    "BAG-403": _Product("Tea bag pouch", "outdoor", 6.80, 0.10, 0),
}
_COUPONS = {"WELCOME10": 10.0, "TEATIME": 15.0, "BOOKWORM": 20.0, "FREESHIP": 0.0}
# (base fee, fee per started kilogram) per shipping zone.
_ZONES = {"domestic": (3.90, 1.10), "eu": (7.50, 2.40), "world": (14.00, 5.20)}


def search_products(keyword: str) -> list[str]:
    """The SKUs of products whose name contains `keyword` (case-insensitive), sorted.

    Example: search_products("tea") -> ["BK-301", "POT-202", "TEA-101", ...]
    """
    needle = keyword.casefold()
    return sorted(sku for sku, product in _CATALOGUE.items() if needle in product.name.casefold())


def list_category(category: str) -> list[str]:
    """The SKUs in a category, sorted. Categories: tea, kitchen, books, outdoor."""
    skus = sorted(sku for sku, product in _CATALOGUE.items() if product.category == category)
    if not skus:
        raise ValueError(f"unknown category {category!r}; known: tea, kitchen, books, outdoor")
    return skus


def product_details(sku: str) -> dict[str, object]:
    """A product's details: name, category, price (EUR), weight_kg and stock (units).

    Example: product_details("MUG-201") -> {"sku": "MUG-201", "name": "Stoneware mug",
    "category": "kitchen", "price": 12.0, "weight_kg": 0.45, "stock": 18}
    """
    try:
        product = _CATALOGUE[sku]
    except KeyError:
        raise ValueError(f"no product with SKU {sku!r}") from None
    return {
        "sku": sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "weight_kg": product.weight_kg,
        "stock": product.stock,
    }


def coupon_discount(code: str) -> float:
    """The percentage a coupon code takes off the goods (not shipping); 0.0 if the code
    is unknown. Example: coupon_discount("WELCOME10") -> 10.0
    """
    return _COUPONS.get(code.upper(), 0.0)


def shipping_cost(weight_kg: float, zone: str) -> float:
    """Shipping for a parcel in EUR: a base fee plus a fee per started kilogram.

    Zones: domestic, eu, world. Example: shipping_cost(1.2, "eu") -> 12.3
    (7.50 + 2 started kilograms x 2.40)
    """
    try:
        base, per_kilogram = _ZONES[zone]
    except KeyError:
        raise ValueError(f"unknown zone {zone!r}; known: domestic, eu, world") from None
    started = max(1, math.ceil(weight_kg))
    return round(base + started * per_kilogram, 2)
