"""The benchmark's tasks: the multi-tool suite and the stateful data-analysis suite.

Written for this project. A **tools** task (`tools/<set>-<nn>`) asks a question that
needs two or more calls into one or two tool sets (`bench/toolsets/`) and some
composition of their results (a loop, a comparison, arithmetic). Each needs at most
nine calls, so that it can be solved in json and text modes, one call a turn, within
the default ten turns.

A **data** task (`data/<scenario>-<n>`) belongs to a scenario: the kernel first runs
`scenario_setup(scenario)` (seeded, generated data: `bench/scenarios.py`), then the
scenario's questions in order, in one namespace, later ones using what earlier ones
made. Besides its answer, a data task names expressions in `namespace` (a variable, or
a short expression over one) and the values they must evaluate to afterwards: what the
question asked to build, and what it should have left alone. The values are plain
literals (numbers, strings, lists, tuples, dicts), so that any kernel can report them
as `repr`s (`checker.values_from_reprs`). The data suite runs in code mode only: json
and text modes have no namespace to keep.

Expected answers are pinned here and checked against the reference solutions by the
tests, so a change to a tool set that changes an answer fails loudly.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "SCENARIOS",
    "SUITES",
    "TOOLSETS",
    "Task",
    "all_tasks",
    "get_task",
    "scenario_setup",
    "tool_functions",
    "toolset_code",
]

SUITES = ("tools", "data")
TOOLSETS = ("units", "shop", "travel", "cipher")


@dataclass(frozen=True)
class Task:
    """One question of the benchmark and how its answer is checked (`bench/checker.py`)."""

    id: str
    suite: str
    prompt: str
    # Lists and mappings are not hashable: a task hashes by the fields that are.
    expected: object = field(hash=False)
    toolsets: tuple[str, ...] = ()
    scenario: str | None = None
    namespace: Mapping[str, object] = field(default_factory=dict, hash=False)


def _tools(number: str, toolsets: tuple[str, ...], prompt: str, expected: object) -> Task:
    name = toolsets[0] if len(toolsets) == 1 else "mixed"
    return Task(f"tools/{name}-{number}", "tools", prompt, expected, toolsets=toolsets)


def _data(
    scenario: str, number: int, prompt: str, expected: object, namespace: dict[str, object]
) -> Task:
    return Task(
        f"data/{scenario}-{number}",
        "data",
        prompt,
        expected,
        scenario=scenario,
        namespace=MappingProxyType(namespace),
    )


_UNITS = ("units",)
_SHOP = ("shop",)
_TRAVEL = ("travel",)
_CIPHER = ("cipher",)

_TOOL_TASKS = (
    _tools(
        "01",
        _UNITS,
        "A bridge is 2.5 miles long and a second bridge is 3800 metres long. "
        "What is their combined length in kilometres, rounded to 3 decimals?",
        7.823,
    ),
    _tools(
        "02",
        _UNITS,
        "Which is heavier: a 12 lb parcel or a 190 oz parcel? Give the heavier "
        "parcel's weight in kilograms, rounded to 2 decimals.",
        5.44,
    ),
    _tools(
        "03",
        _UNITS,
        "I have three payments of 100, 250 and 400 US dollars. What are they "
        "worth together in euros, rounded to 2 decimals?",
        694.44,
    ),
    _tools(
        "04",
        _UNITS,
        "One recipe bakes at 350 °F and another at 453 K. What is the first "
        "temperature minus the second, in degrees Celsius, rounded to 2 decimals?",
        -3.18,
    ),
    _tools(
        "05",
        _UNITS,
        "I change 500 British pounds into Japanese yen, then change all of "
        "those yen into Swiss francs. How many francs do I end up with?",
        558.82,
    ),
    _tools(
        "06",
        _UNITS,
        "Of the currencies USD, GBP, CHF, CAD and AUD, which one does one euro "
        "buy the fewest units of? Give the currency code.",
        "GBP",
    ),
    _tools(
        "07",
        _UNITS,
        "A runner ran 5 laps of 400 metres and then 3 miles. How far did they "
        "run in total, in kilometres, rounded to 2 decimals?",
        6.83,
    ),
    _tools(
        "08",
        _UNITS,
        "Three afternoons measured 68 °F, 75.2 °F and 59 °F. What was their "
        "average in degrees Celsius, rounded to 2 decimals?",
        19.67,
    ),
    _tools(
        "09",
        _UNITS,
        "A pallet weighing 25 lb carries 40 boxes of 18 oz each. What do the "
        "pallet and boxes weigh together, in kilograms, rounded to 2 decimals?",
        31.75,
    ),
    _tools(
        "10",
        _UNITS,
        "One hotel asks 180 CHF a night, another 23000 JPY a night. How many "
        "euros a night apart are they, rounded to 2 decimals?",
        45.72,
    ),
    _tools(
        "11",
        _UNITS,
        "Order these sums from the most to the least valuable in euros: 90 GBP, "
        "100 USD, 15000 JPY, 110 CAD. Give the currency codes in that order.",
        ["GBP", "JPY", "USD", "CAD"],
    ),
    _tools(
        "01",
        _SHOP,
        "What do all the products in the tea category cost together, one of each, in EUR?",
        24.6,
    ),
    _tools(
        "02",
        _SHOP,
        "Which products in the kitchen category are out of stock? Give their SKUs.",
        ["SCL-204"],
    ),
    _tools(
        "03", _SHOP, "Which product in the books category is the cheapest? Give its SKU.", "BK-303"
    ),
    _tools(
        "04",
        _SHOP,
        "How many units are in stock, all together, of the products whose name "
        "contains the word 'tea'?",
        90,
    ),
    _tools(
        "05",
        _SHOP,
        "I buy one of each product in the outdoor category and ship them in one "
        "parcel to the eu zone. What do the goods plus shipping cost in EUR?",
        59.2,
    ),
    _tools(
        "06",
        _SHOP,
        "I buy one KET-203 and two MUG-201 with the coupon TEATIME and ship "
        "them in one parcel to the domestic zone. What do I pay in total, in EUR, rounded "
        "to 2 decimals?",
        60.75,
    ),
    _tools(
        "07",
        _SHOP,
        "What is the average price of the products in the books category, in "
        "EUR, rounded to 2 decimals?",
        18.77,
    ),
    _tools(
        "08",
        _SHOP,
        "Which of the categories books and outdoor has the higher stock value "
        "(the sum over its products of price times units in stock)? Give the category.",
        "outdoor",
    ),
    _tools(
        "09",
        _SHOP,
        "With the coupon BOOKWORM, what do one copy of each product in the books "
        "category cost together before shipping, in EUR, rounded to 2 decimals?",
        45.04,
    ),
    _tools(
        "10",
        _SHOP,
        "I ship POT-202 and FLK-402 together in one parcel. How many euros more "
        "does it cost to ship it to the world zone than to the eu zone?",
        12.1,
    ),
    _tools(
        "11",
        _SHOP,
        "How many units are in stock, all together, of the products whose name "
        "contains 'cup' or 'mug'?",
        40,
    ),
    _tools(
        "01",
        _TRAVEL,
        "At what local time in its destination does flight AX101 land? Give "
        "it as YYYY-MM-DDTHH:MM.",
        "2025-05-12T13:05",
    ),
    _tools(
        "02",
        _TRAVEL,
        "Which flight departing from Lisbon has the lowest fare? Give the flight number.",
        "AX101",
    ),
    _tools(
        "03",
        _TRAVEL,
        "I fly to Helsinki on AX210 and back on AX211, staying in a hotel every "
        "night between the two departure dates. What does the hotel cost in EUR?",
        270,
    ),
    _tools(
        "04",
        _TRAVEL,
        "On which weekday does flight AX305 land, in its destination's local time?",
        "Tuesday",
    ),
    _tools(
        "05",
        _TRAVEL,
        "A trip: flight AX305 out, flight AX306 back, and a hotel in New York "
        "every night between the two departure dates. What do the two fares and the hotel "
        "cost together in EUR?",
        2495,
    ),
    _tools(
        "06",
        _TRAVEL,
        "Which flight departing from Berlin is the longest? Give the flight number.",
        "AX410",
    ),
    _tools(
        "07",
        _TRAVEL,
        "At what local time in Tokyo does flight AX530 land? Give it as YYYY-MM-DDTHH:MM.",
        "2025-05-29T15:40",
    ),
    _tools(
        "08",
        _TRAVEL,
        "Which cities can I fly to directly from Helsinki? Give them sorted alphabetically.",
        ["Berlin", "Tokyo"],
    ),
    _tools(
        "09",
        _TRAVEL,
        "How many days pass between the departure dates of flight AX410 and of flight AX411?",
        8,
    ),
    _tools(
        "10",
        _TRAVEL,
        "Flights AX101 and AX520 both leave Lisbon on 12 May. Which one lands "
        "first (compare the landing times in UTC)? Give the flight number.",
        "AX520",
    ),
    _tools(
        "11",
        _TRAVEL,
        "How many hours do the flights AX101, AX210 and AX540 spend in the air "
        "altogether, rounded to 2 decimals?",
        18.5,
    ),
    _tools("01", _CIPHER, "Decode message M1. How many lanterns does it ask for?", 12),
    _tools(
        "02",
        _CIPHER,
        "Which senders of the messages M1, M4 and M6 mention the harbour once "
        "their message is decoded? Give the sender names in message order, each once.",
        ["ada", "ben"],
    ),
    _tools(
        "03",
        _CIPHER,
        "What is the sum of all the numbers written in messages M1 and M6, once decoded?",
        42,
    ),
    _tools("04", _CIPHER, "Decode message M2. What is the vault code?", 4417),
    _tools("05", _CIPHER, "How many messages in the inbox are encoded with atbash?", 2),
    _tools(
        "06",
        _CIPHER,
        "Decode message M3. Crates of which fruit are to be shipped? Give the "
        "fruit's name as the message writes it.",
        "lemons",
    ),
    _tools(
        "07",
        _CIPHER,
        "Decode message M4 and multiply the two numbers it contains. What is the product?",
        54,
    ),
    _tools(
        "08",
        _CIPHER,
        "Which of the messages M3, M7 and M8 mentions days once decoded? Give its id.",
        "M7",
    ),
    _tools(
        "09",
        _CIPHER,
        "Decode message M8. How many people are at the meeting, guests and speakers together?",
        16,
    ),
    _tools(
        "10",
        _CIPHER,
        "Decode messages M6 and M1 and give all the numbers they contain as "
        "one list, in ascending order.",
        [3, 7, 12, 20],
    ),
    _tools(
        "11",
        _CIPHER,
        "Among the messages M2, M3 and M7, once decoded, which sender wrote the "
        "largest number? Give the sender's name.",
        "ben",
    ),
    _tools("01", ("shop", "units"), "What does product KET-203 cost in US dollars?", 42.12),
    _tools(
        "02",
        ("travel", "units"),
        "What are the fares of flights AX101 and AX520 worth together in British pounds?",
        258.4,
    ),
    _tools(
        "03",
        ("shop", "units"),
        "How many pounds (lb) do one of each product in the outdoor "
        "category weigh together, rounded to 2 decimals?",
        2.2,
    ),
)

_SALES_COLUMNS = ["order_id", "date", "region", "product", "units", "unit_price"]
_REVENUE_BY_REGION = {"East": 5205.05, "North": 6483.5, "South": 5576.35, "West": 5716.05}
_MONTHLY = {
    "units": {
        "2025-01": 358,
        "2025-02": 401,
        "2025-03": 369,
        "2025-04": 301,
        "2025-05": 292,
        "2025-06": 314,
    },
    "revenue": {
        "2025-01": 4850.4,
        "2025-02": 3283.8,
        "2025-03": 4076.25,
        "2025-04": 3223.65,
        "2025-05": 2890.1,
        "2025-06": 4656.75,
    },
}
_SENSOR_MEANS = {"S1": 19.223, "S2": 22.524, "S3": 17.456, "S4": 25.35}
_READINGS_MISSING = "int(readings['temperature'].isna().sum())"
_HONOURS = ["Chen Quinn", "Fay Nair", "Kim Quinn", "Kim Reyes"]

_DATA_TASKS = (
    _data(
        "sales",
        1,
        "Read the CSV file whose path is in `sales_csv` into a pandas DataFrame named "
        "`sales`. How many rows does it have?",
        200,
        {"len(sales)": 200, "list(sales.columns)": _SALES_COLUMNS},
    ),
    _data(
        "sales",
        2,
        "Add a column `revenue` to `sales`: units times unit_price. What is the total "
        "revenue, rounded to 2 decimals?",
        22980.95,
        {"round(float(sales['revenue'].sum()), 2)": 22980.95, "len(sales)": 200},
    ),
    _data(
        "sales",
        3,
        "Make a Series `revenue_by_region` holding the total revenue of each region in "
        "`sales`. Which region has the highest total revenue?",
        "North",
        {
            "revenue_by_region.round(2).to_dict()": _REVENUE_BY_REGION,
            "list(sales.columns)": [*_SALES_COLUMNS, "revenue"],
        },
    ),
    _data(
        "sales",
        4,
        "Make a DataFrame `monthly` with one row per month of `sales`, indexed by the month "
        "as a 'YYYY-MM' string, with the columns `units` and `revenue` summed. In which month was "
        "revenue highest? Give it as YYYY-MM.",
        "2025-01",
        {
            "monthly.round(2).to_dict()": _MONTHLY,
            "revenue_by_region.round(2).to_dict()": _REVENUE_BY_REGION,
            "len(sales)": 200,
        },
    ),
    _data(
        "sensors",
        1,
        "How many temperature values are missing in the DataFrame `readings`?",
        11,
        {"readings.shape": (192, 3), _READINGS_MISSING: 11},
    ),
    _data(
        "sensors",
        2,
        "Make `clean`: the rows of `readings` whose temperature is not missing. How many "
        "rows does `clean` have?",
        181,
        {
            "len(clean)": 181,
            "int(clean['temperature'].isna().sum())": 0,
            "readings.shape": (192, 3),
            _READINGS_MISSING: 11,
        },
    ),
    _data(
        "sensors",
        3,
        "Using `clean`, make a Series `sensor_means` with the mean temperature of each "
        "sensor. Which sensor has the highest mean?",
        "S4",
        {"sensor_means.round(3).to_dict()": _SENSOR_MEANS, "len(clean)": 181},
    ),
    _data(
        "sensors",
        4,
        "How many rows of `clean` have a temperature more than 5 degrees above their own "
        "sensor's mean in `sensor_means`?",
        13,
        {
            "sensor_means.round(3).to_dict()": _SENSOR_MEANS,
            "len(clean)": 181,
            "readings.shape": (192, 3),
        },
    ),
    _data(
        "grades",
        1,
        "Read the CSV file whose path is in `grades_csv` into a pandas DataFrame named "
        "`grades`. How many students are in class B?",
        12,
        {"grades.shape": (36, 5)},
    ),
    _data(
        "grades",
        2,
        "Add a column `average` to `grades`: each student's mean of math, physics and "
        "literature. Which student has the highest average? Give the name.",
        "Kim Quinn",
        {"round(float(grades['average'].sum()), 2)": 2521.67, "grades.shape": (36, 6)},
    ),
    _data(
        "grades",
        3,
        "Make a list `honours` of the names of the students whose average is at least 80, "
        "sorted alphabetically. How many students are on it?",
        4,
        {"honours": _HONOURS, "grades.shape": (36, 6)},
    ),
    _data(
        "grades",
        4,
        "Make a dict `class_means` mapping each class to the mean of its students' "
        "averages, rounded to 2 decimals. Which class has the highest?",
        "C",
        {"class_means": {"A": 69.69, "B": 70.03, "C": 70.42}, "honours": _HONOURS},
    ),
)

# The data each scenario starts from, as code the kernel runs before its first question.
SCENARIOS: Mapping[str, str] = MappingProxyType(
    {
        "sales": (
            "import tempfile as _tempfile\n"
            "from codeact_kernel.bench.scenarios import write_sales as _write_sales\n"
            "sales_csv = _write_sales(_tempfile.mkdtemp(prefix='codeact-bench-'))\n"
            "del _tempfile, _write_sales\n"
        ),
        "sensors": (
            "from codeact_kernel.bench.scenarios import sensor_readings as _sensor_readings\n"
            "readings = _sensor_readings()\n"
            "del _sensor_readings\n"
        ),
        "grades": (
            "import tempfile as _tempfile\n"
            "from codeact_kernel.bench.scenarios import write_grades as _write_grades\n"
            "grades_csv = _write_grades(_tempfile.mkdtemp(prefix='codeact-bench-'))\n"
            "del _tempfile, _write_grades\n"
        ),
    }
)


def all_tasks(suite: str = "all", pattern: str | None = None) -> list[Task]:
    """The tasks of `suite` ("tools", "data" or "all"), in order (a scenario's in the order
    they must run), keeping those whose id matches the glob `pattern` (e.g. "tools/shop-*")."""
    if suite not in (*SUITES, "all"):
        raise ValueError(f"unknown suite {suite!r}; choose tools, data or all")
    tasks = [
        *(_TOOL_TASKS if suite in ("tools", "all") else ()),
        *(_DATA_TASKS if suite in ("data", "all") else ()),
    ]
    if pattern is not None:
        tasks = [task for task in tasks if fnmatch.fnmatchcase(task.id, pattern)]
    return tasks


def get_task(task_id: str) -> Task:
    """The task with this id; KeyError names the id if there is none."""
    for task in all_tasks():
        if task.id == task_id:
            return task
    raise KeyError(task_id)


def scenario_setup(scenario: str) -> str:
    """Python code that builds the scenario's data in the namespace it runs in."""
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}") from None


def _toolset(name: str) -> object:
    if name not in TOOLSETS:
        raise ValueError(f"unknown tool set {name!r}; known: {', '.join(TOOLSETS)}")
    return importlib.import_module(f"{__package__}.toolsets.{name}")


def tool_functions(toolsets: Sequence[str]) -> dict[str, Callable[..., object]]:
    """The tools of these sets by name, in the sets' order and each set's `__all__` order."""
    functions: dict[str, Callable[..., object]] = {}
    for name in toolsets:
        module = _toolset(name)
        for function_name in module.__all__:  # type: ignore[attr-defined]
            functions[function_name] = getattr(module, function_name)
    return functions


def toolset_code(toolsets: Sequence[str]) -> str:
    """Python code that imports the sets' tools into the namespace it runs in and marks each
    with `codeact_kernel.tool`, so that the model is told their signatures and docstrings."""
    lines = ["from codeact_kernel import tool"]
    for name in toolsets:
        module = _toolset(name)
        names = ", ".join(module.__all__)  # type: ignore[attr-defined]
        lines.append(f"from {module.__name__} import {names}")  # type: ignore[attr-defined]
    # A loop rather than one `tool(f)` line per tool: the cell shows no `Out[]` of a function.
    lines.append(f"for _function in ({', '.join(tool_functions(toolsets))},):")
    lines.append("    tool(_function)")
    lines.append("del _function")
    return "\n".join(lines) + "\n"
