"""Scripted reference solutions: every task solved, in every mode it runs in.

A solution is Python over the task's tools (or its scenario's namespace) that leaves
the answer in `answer`. From it come the model turns a perfect model would write
(`reference_turns`):

- **code**: one answer with the solution in a ```python block that prints `answer`,
  then the final answer `Answer: …`.
- **json** / **text**: the solution is run here with every tool call recorded; each
  call becomes one turn (`{"name": …, "arguments": {…}}` or `Action: tool(arg=…)`, the
  arguments by name), then `Answer: …` with the value the solution computed.

The data suite runs in code mode only (`tasks.py`). Its final answers come from
replaying the scenario here: its setup, then the solutions of its earlier questions.
The tests prove that every turn list scores 100% through the real episode loops.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from .tasks import Task, all_tasks, scenario_setup, tool_functions

__all__ = ["ToolCallRecord", "format_answer", "reference_code", "reference_turns", "solve"]

ToolCallRecord = tuple[str, dict[str, Any]]

_SOLUTIONS: dict[str, str] = {
    "tools/units-01": """\
answer = round(convert_length(2.5, "mi", "km") + convert_length(3800, "m", "km"), 3)
""",
    "tools/units-02": """\
answer = round(max(convert_mass(12, "lb", "kg"), convert_mass(190, "oz", "kg")), 2)
""",
    "tools/units-03": """\
answer = round(sum(convert_currency(amount, "USD", "EUR") for amount in (100, 250, 400)), 2)
""",
    "tools/units-04": """\
answer = round(convert_temperature(350, "F", "C") - convert_temperature(453, "K", "C"), 2)
""",
    "tools/units-05": """\
yen = convert_currency(500, "GBP", "JPY")
answer = convert_currency(yen, "JPY", "CHF")
""",
    "tools/units-06": """\
rates = {code: exchange_rate("EUR", code) for code in ("USD", "GBP", "CHF", "CAD", "AUD")}
answer = min(rates, key=rates.get)
""",
    "tools/units-07": """\
answer = round(convert_length(5 * 400, "m", "km") + convert_length(3, "mi", "km"), 2)
""",
    "tools/units-08": """\
celsius = [convert_temperature(value, "F", "C") for value in (68, 75.2, 59)]
answer = round(sum(celsius) / len(celsius), 2)
""",
    "tools/units-09": """\
answer = round(convert_mass(40 * 18, "oz", "kg") + convert_mass(25, "lb", "kg"), 2)
""",
    "tools/units-10": """\
answer = round(abs(convert_currency(180, "CHF", "EUR") - convert_currency(23000, "JPY", "EUR")), 2)
""",
    "tools/units-11": """\
amounts = {"GBP": 90, "USD": 100, "JPY": 15000, "CAD": 110}
in_euros = {code: convert_currency(amount, code, "EUR") for code, amount in amounts.items()}
answer = sorted(in_euros, key=in_euros.get, reverse=True)
""",
    "tools/shop-01": """\
answer = round(sum(product_details(sku)["price"] for sku in list_category("tea")), 2)
""",
    "tools/shop-02": """\
answer = [sku for sku in list_category("kitchen") if product_details(sku)["stock"] == 0]
""",
    "tools/shop-03": """\
books = [product_details(sku) for sku in list_category("books")]
answer = min(books, key=lambda book: book["price"])["sku"]
""",
    "tools/shop-04": """\
answer = sum(product_details(sku)["stock"] for sku in search_products("tea"))
""",
    "tools/shop-05": """\
items = [product_details(sku) for sku in list_category("outdoor")]
goods = sum(item["price"] for item in items)
answer = round(goods + shipping_cost(sum(item["weight_kg"] for item in items), "eu"), 2)
""",
    "tools/shop-06": """\
kettle, mug = product_details("KET-203"), product_details("MUG-201")
goods = (kettle["price"] + 2 * mug["price"]) * (1 - coupon_discount("TEATIME") / 100)
weight = kettle["weight_kg"] + 2 * mug["weight_kg"]
answer = round(goods + shipping_cost(weight, "domestic"), 2)
""",
    "tools/shop-07": """\
prices = [product_details(sku)["price"] for sku in list_category("books")]
answer = round(sum(prices) / len(prices), 2)
""",
    "tools/shop-08": """\
def stock_value(category):
    return sum(d["price"] * d["stock"] for d in map(product_details, list_category(category)))
answer = max(("books", "outdoor"), key=stock_value)
""",
    "tools/shop-09": """\
prices = [product_details(sku)["price"] for sku in list_category("books")]
answer = round(sum(prices) * (1 - coupon_discount("BOOKWORM") / 100), 2)
""",
    "tools/shop-10": """\
weight = product_details("POT-202")["weight_kg"] + product_details("FLK-402")["weight_kg"]
answer = round(shipping_cost(weight, "world") - shipping_cost(weight, "eu"), 2)
""",
    "tools/shop-11": """\
skus = search_products("cup") + search_products("mug")
answer = sum(product_details(sku)["stock"] for sku in skus)
""",
    "tools/travel-01": """\
flight = flight_details("AX101")
shift = (utc_offset(flight["destination"]) - utc_offset(flight["origin"])) * 60
answer = add_minutes(flight["departure"], flight["duration_minutes"] + shift)
""",
    "tools/travel-02": """\
fares = {number: flight_details(number)["fare_eur"] for number in flights_from("Lisbon")}
answer = min(fares, key=fares.get)
""",
    "tools/travel-03": """\
out, back = flight_details("AX210"), flight_details("AX211")
answer = days_between(out["departure"], back["departure"]) * hotel_rate("Helsinki")
""",
    "tools/travel-04": """\
flight = flight_details("AX305")
shift = (utc_offset(flight["destination"]) - utc_offset(flight["origin"])) * 60
answer = weekday(add_minutes(flight["departure"], flight["duration_minutes"] + shift))
""",
    "tools/travel-05": """\
out, back = flight_details("AX305"), flight_details("AX306")
nights = days_between(out["departure"], back["departure"])
answer = out["fare_eur"] + back["fare_eur"] + nights * hotel_rate("New York")
""",
    "tools/travel-06": """\
durations = {n: flight_details(n)["duration_minutes"] for n in flights_from("Berlin")}
answer = max(durations, key=durations.get)
""",
    "tools/travel-07": """\
flight = flight_details("AX530")
shift = (utc_offset(flight["destination"]) - utc_offset(flight["origin"])) * 60
answer = add_minutes(flight["departure"], flight["duration_minutes"] + shift)
""",
    "tools/travel-08": """\
answer = sorted(flight_details(number)["destination"] for number in flights_from("Helsinki"))
""",
    "tools/travel-09": """\
answer = days_between(flight_details("AX410")["departure"], flight_details("AX411")["departure"])
""",
    "tools/travel-10": """\
offset = utc_offset("Lisbon") * 60
landings = {}
for number in ("AX101", "AX520"):
    flight = flight_details(number)
    landings[number] = add_minutes(flight["departure"], flight["duration_minutes"] - offset)
answer = min(landings, key=landings.get)
""",
    "tools/travel-11": """\
minutes = sum(flight_details(number)["duration_minutes"] for number in ("AX101", "AX210", "AX540"))
answer = round(minutes / 60, 2)
""",
    "tools/cipher-01": """\
message = read_message("M1")
text = caesar_decode(message["body"], int(message["encoding"].split(":")[1]))
answer = extract_numbers(text)[1]
""",
    "tools/cipher-02": """\
def decode(message):
    encoding, body = message["encoding"], message["body"]
    if encoding.startswith("caesar:"):
        return caesar_decode(body, int(encoding.split(":")[1]))
    return {"reverse": reverse_text, "atbash": atbash}.get(encoding, str)(body)
senders = []
for message_id in ("M1", "M4", "M6"):
    message = read_message(message_id)
    if "harbour" in decode(message) and message["sender"] not in senders:
        senders.append(message["sender"])
answer = senders
""",
    "tools/cipher-03": """\
total = 0
for message_id in ("M1", "M6"):
    message = read_message(message_id)
    total += sum(extract_numbers(caesar_decode(message["body"], int(message["encoding"][7:]))))
answer = total
""",
    "tools/cipher-04": """\
answer = extract_numbers(reverse_text(read_message("M2")["body"]))[0]
""",
    "tools/cipher-05": """\
answer = sum(read_message(message_id)["encoding"] == "atbash" for message_id in inbox())
""",
    "tools/cipher-06": """\
text = atbash(read_message("M3")["body"])
answer = text.split(" of ")[1].split()[0]
""",
    "tools/cipher-07": """\
message = read_message("M4")
numbers = extract_numbers(caesar_decode(message["body"], int(message["encoding"][7:])))
answer = numbers[0] * numbers[1]
""",
    "tools/cipher-08": """\
def decode(message):
    encoding, body = message["encoding"], message["body"]
    if encoding.startswith("caesar:"):
        return caesar_decode(body, int(encoding.split(":")[1]))
    return {"reverse": reverse_text, "atbash": atbash}.get(encoding, str)(body)
answer = next(m for m in ("M3", "M7", "M8") if "days" in decode(read_message(m)))
""",
    "tools/cipher-09": """\
answer = sum(extract_numbers(atbash(read_message("M8")["body"])))
""",
    "tools/cipher-10": """\
numbers = []
for message_id in ("M6", "M1"):
    message = read_message(message_id)
    numbers += extract_numbers(caesar_decode(message["body"], int(message["encoding"][7:])))
answer = sorted(numbers)
""",
    "tools/cipher-11": """\
def decode(message):
    encoding, body = message["encoding"], message["body"]
    if encoding.startswith("caesar:"):
        return caesar_decode(body, int(encoding.split(":")[1]))
    return {"reverse": reverse_text, "atbash": atbash}.get(encoding, str)(body)
largest = {}
for message_id in ("M2", "M3", "M7"):
    message = read_message(message_id)
    largest[message["sender"]] = max(extract_numbers(decode(message)))
answer = max(largest, key=largest.get)
""",
    "tools/mixed-01": """\
answer = convert_currency(product_details("KET-203")["price"], "EUR", "USD")
""",
    "tools/mixed-02": """\
fares = flight_details("AX101")["fare_eur"] + flight_details("AX520")["fare_eur"]
answer = convert_currency(fares, "EUR", "GBP")
""",
    "tools/mixed-03": """\
weight = sum(product_details(sku)["weight_kg"] for sku in list_category("outdoor"))
answer = round(convert_mass(weight, "kg", "lb"), 2)
""",
    "data/sales-1": """\
import pandas as pd
sales = pd.read_csv(sales_csv)
answer = len(sales)
""",
    "data/sales-2": """\
sales["revenue"] = sales["units"] * sales["unit_price"]
answer = round(float(sales["revenue"].sum()), 2)
""",
    "data/sales-3": """\
revenue_by_region = sales.groupby("region")["revenue"].sum()
answer = revenue_by_region.idxmax()
""",
    "data/sales-4": """\
monthly = sales.groupby(sales["date"].str[:7])[["units", "revenue"]].sum()
answer = monthly["revenue"].idxmax()
""",
    "data/sensors-1": """\
answer = int(readings["temperature"].isna().sum())
""",
    "data/sensors-2": """\
clean = readings.dropna(subset=["temperature"])
answer = len(clean)
""",
    "data/sensors-3": """\
sensor_means = clean.groupby("sensor")["temperature"].mean()
answer = sensor_means.idxmax()
""",
    "data/sensors-4": """\
above = clean["temperature"] > clean["sensor"].map(sensor_means) + 5
answer = int(above.sum())
""",
    "data/grades-1": """\
import pandas as pd
grades = pd.read_csv(grades_csv)
answer = int((grades["class"] == "B").sum())
""",
    "data/grades-2": """\
grades["average"] = grades[["math", "physics", "literature"]].mean(axis=1)
answer = grades.loc[grades["average"].idxmax(), "name"]
""",
    "data/grades-3": """\
honours = sorted(grades.loc[grades["average"] >= 80, "name"])
answer = len(honours)
""",
    "data/grades-4": """\
class_means = grades.groupby("class")["average"].mean().round(2).to_dict()
answer = max(class_means, key=class_means.get)
""",
}


def reference_code(task: Task) -> str:
    """The task's reference solution: Python that leaves the answer in `answer`."""
    try:
        return _SOLUTIONS[task.id]
    except KeyError:
        raise ValueError(f"no reference solution for {task.id}") from None


def format_answer(value: object) -> str:
    """A value as the `Answer:` line gives it: lists comma-separated, numbers plainly."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_answer(item) for item in value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def solve(task: Task) -> tuple[object, list[ToolCallRecord]]:
    """Run the task's solution here: its answer, and the tool calls it made in order
    (each as its tool's name and its arguments by parameter name)."""
    if task.suite == "data":
        return _data_answers(task.scenario or "")[task.id], []
    calls: list[ToolCallRecord] = []
    namespace: dict[str, Any] = {
        name: _recorded(name, function, calls)
        for name, function in tool_functions(task.toolsets).items()
    }
    exec(reference_code(task), namespace)
    return namespace["answer"], calls


def _recorded(
    name: str, function: Callable[..., object], calls: list[ToolCallRecord]
) -> Callable[..., object]:
    signature = inspect.signature(function)

    def call(*args: object, **kwargs: object) -> object:
        calls.append((name, dict(signature.bind(*args, **kwargs).arguments)))
        return function(*args, **kwargs)

    return call


@functools.cache
def _data_answers(scenario: str) -> dict[str, object]:
    """Every answer of a scenario, its questions solved in order in one namespace."""
    namespace: dict[str, Any] = {}
    exec(scenario_setup(scenario), namespace)
    answers: dict[str, object] = {}
    for task in all_tasks("data"):
        if task.scenario == scenario:
            exec(reference_code(task), namespace)
            answers[task.id] = namespace["answer"]
    return answers


def reference_turns(task: Task, mode: str) -> list[str]:
    """The model turns of the reference solution of `task` in `mode` ("code", "json", "text")."""
    if mode == "code":
        code = reference_code(task).rstrip("\n")
        answer, _ = solve(task)
        return [
            f"I will work it out in one step.\n```python\n{code}\nprint(answer)\n```",
            f"The printed value is the answer.\nAnswer: {format_answer(answer)}",
        ]
    if mode not in ("json", "text"):
        raise ValueError(f"unknown mode {mode!r}; choose code, json or text")
    if task.suite != "tools":
        raise ValueError(f"{task.id} runs in code mode only: {mode} mode has no namespace")
    answer, calls = solve(task)
    render = _json_call if mode == "json" else _text_call
    turns = [f"Next I call {name}.\n{render(name, arguments)}" for name, arguments in calls]
    return [*turns, f"That is everything I needed.\nAnswer: {format_answer(answer)}"]


def _json_call(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def _text_call(name: str, arguments: dict[str, Any]) -> str:
    listed = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    return f"Action: {name}({listed})"
