"""The analysis the browser tests run: monthly sales, a table, a fixed error and a chart
in four steps, then a final answer that reads after them."""

from __future__ import annotations

from model_server import ScriptedModelServer, text

from .lab_driver import Lab, code, markdown, write_notebook

SALES = 'sales = {"Jan": 120, "Feb": 135, "Mar": 160, "Apr": 150}'
PROMPT = (
    "Put the sales into a table with pandas, add the month-over-month growth in percent "
    "and chart the revenue as bars."
)
STEP_1 = (
    "import pandas as pd\n"
    'df = pd.DataFrame({"month": list(sales), "revenue": list(sales.values())})\n'
    "df.revenue.sum()"
)
STEP_2 = 'df["growth"] = revenue.pct_change() * 100'
STEP_3 = 'df["growth"] = df.revenue.pct_change().mul(100).round(1)\ndf'
STEP_4 = (
    "from IPython.display import SVG\n"
    'bars = \'\'.join(f\'<rect x="{i * 50}" y="{170 - v}" width="40" height="{v}" \'\n'
    "               f'fill=\"#4a90d9\"/>' for i, v in enumerate(df.revenue))\n"
    'SVG(f\'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="170">{bars}</svg>\')'
)
FINAL = "Revenue grew every month but April (**-6.2%**); the table and the chart are in the steps."


def fenced(prose: str, source: str) -> str:
    """A model answer: `prose`, then `source` as a fenced Python action."""
    return f"{prose}\n```python\n{source}\n```\n"


def script_analysis(model_server: ScriptedModelServer) -> None:
    model_server.script(
        text(fenced("I'll load the numbers into a DataFrame first.", STEP_1)),
        text(fenced("Now the growth per month.", STEP_2)),
        text(fenced("`revenue` is a column of `df`; fixing that.", STEP_3)),
        text(fenced("And a bar chart of the revenue.", STEP_4)),
        text(FINAL),
    )


def analysis_notebook(lab: Lab, name: str) -> None:
    write_notebook(
        lab,
        name,
        [
            markdown("intro", "# Monthly sales"),
            code("data", SALES),
            code("prompt", PROMPT),
            code("after", 'print("a cell the user wrote")'),
        ],
    )
