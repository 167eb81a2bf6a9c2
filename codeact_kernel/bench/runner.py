"""Run a benchmark: the episodes of the chosen tasks and modes, in parallel, to a results file.

The work is cut into units, each run in one go:
- code mode: one task in one fresh `codeact` kernel, or one data scenario (its
  questions in order, sharing a namespace) in one kernel;
- json and text modes: one task's tool-calling loop, here in this process.
`parallel` units run at a time. Each finished unit's episodes are appended to
`results.jsonl` at once (one `Episode.to_json()` per line), so an interrupted run
keeps what it finished and `--resume` picks up from there: episodes already in the file
are not run again (no model call), except provider errors, which are not a verdict on
the model and are retried. A scenario is written whole, so it is done or not at all.

A unit that fails for the harness's own reasons (a kernel that does not start, a
timeout) writes nothing: it is reported at the end and runs again on `--resume`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from ..providers import create_model, parse_model_name, resolve_settings
from ..settings import Settings
from .actions import Mode
from .code_mode import run_code_episode, run_scenario
from .episode import Episode, run_tool_episode
from .kernels import GatewayKernels, KernelFactory, KernelFailure, LocalKernels
from .tasks import Task, all_tasks

MODES = ("code", "json", "text")
RESULTS = "results.jsonl"
# Seconds one request (one task's whole loop) may take before the harness gives up.
DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class BenchConfig:
    """What `codeact bench` was asked to run."""

    model: str
    out: Path
    base_url: str = ""
    modes: tuple[str, ...] = MODES
    suite: str = "all"
    patterns: tuple[str, ...] = ()
    parallel: int = 1
    resume: bool = False
    gateway_url: str | None = None
    max_turns: int = 10
    timeout: float = DEFAULT_TIMEOUT

    @property
    def results(self) -> Path:
        return self.out / RESULTS


@dataclass(frozen=True)
class Unit:
    """Episodes run in one go: one task, or a data scenario's questions in order."""

    mode: str
    tasks: tuple[Task, ...]

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(task.id, self.mode) for task in self.tasks]


@dataclass
class RunOutcome:
    """What a run produced: every episode in the results file (earlier ones included),
    and the units that could not run."""

    episodes: list[Episode]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0


class Progress(Protocol):
    """Told how many episodes are to run, then of each unit as it ends (its episodes, or
    why it could not run)."""

    def start(self, total: int) -> None: ...

    def update(self, unit: Unit, episodes: list[Episode] | None, error: str | None) -> None: ...


def plan(
    tasks: Sequence[Task], modes: Iterable[str], done: Iterable[tuple[str, str]]
) -> list[Unit]:
    """The units still to run. Data tasks run in code mode only (json and text actions
    have no namespace to keep a scenario's state in), a scenario as one unit."""
    finished = set(done)
    units: list[Unit] = []
    for mode in modes:
        scenarios: dict[str, list[Task]] = {}
        for task in tasks:
            if task.scenario is not None:
                if mode == "code":
                    scenarios.setdefault(task.scenario, []).append(task)
            elif (task.id, mode) not in finished:
                units.append(Unit(mode, (task,)))
        for questions in scenarios.values():
            unit = Unit(mode, tuple(questions))
            if not all(key in finished for key in unit.keys):
                units.append(unit)
    return units


def select_tasks(suite: str, patterns: Sequence[str] = ()) -> list[Task]:
    """The suite's tasks matching any of `patterns` (all of them when there is none); a
    data scenario is taken whole when any of its questions matches (later questions need
    what earlier ones built)."""
    everything = all_tasks(suite)
    if not patterns:
        return everything
    chosen = {task.id for pattern in patterns for task in all_tasks(suite, pattern)}
    scenarios = {task.scenario for task in everything if task.id in chosen and task.scenario}
    return [task for task in everything if task.id in chosen or task.scenario in scenarios]


def load_results(path: Path) -> list[Episode]:
    """The episodes in a results file, the latest line per (task, mode).

    A last line cut short (the run was killed while writing it) is left out: its unit
    runs again. Any other line that is not an episode stops the run, as the file is then
    not one this command wrote.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    latest: dict[tuple[str, str], Episode] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            episode = Episode.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise ValueError(
                f"{path}:{number} is not an episode ({error}); move the file away "
                "or run without --resume"
            ) from error
        latest[(episode.task, episode.mode)] = episode
    return list(latest.values())


def kernel_env(settings: Settings, max_turns: int) -> dict[str, str]:
    """The settings a `codeact` kernel needs for the benchmark, as its environment: the
    model, its endpoint and key, its temperature, and the turn limit (every failed action
    may be retried within it, as in the json and text modes)."""
    env = {
        "CODEACT_MODEL": settings.model,
        "CODEACT_MAX_STEPS": str(max_turns),
        "CODEACT_MAX_RETRIES": str(max_turns),
    }
    if settings.temperature is not None:
        env["CODEACT_TEMPERATURE"] = str(settings.temperature)
    if settings.base_url:
        env["CODEACT_BASE_URL"] = settings.base_url
    if settings.api_key:
        env["CODEACT_API_KEY"] = settings.api_key
    return env


async def run_bench(config: BenchConfig, progress: Progress | None = None) -> RunOutcome:
    """Run what `config` asks for; the results file holds every episode afterwards."""
    tasks = select_tasks(config.suite, config.patterns)
    if not tasks:
        wanted = " ".join(config.patterns)
        raise ValueError(
            f"no {config.suite} task matches {wanted}; task ids look like "
            "tools/shop-01 or data/sales-1"
        )
    # Temperature 0 in every mode, as in the paper: the comparison is of action formats.
    session: dict[str, object] = {
        "model": config.model,
        "max_steps": config.max_turns,
        "temperature": 0.0,
    }
    if config.base_url:
        session["base_url"] = config.base_url
    settings = resolve_settings(session=session)
    parse_model_name(settings.model)  # a misspelt model stops here, before any file changes
    config.out.mkdir(parents=True, exist_ok=True)
    if not config.resume:
        config.results.write_text("", encoding="utf-8")
    _drop_cut_line(config.results)
    done = {(e.task, e.mode) for e in load_results(config.results) if e.error != "provider_error"}
    units = plan(tasks, config.modes, done)
    outcome = RunOutcome([], skipped=sum((t.id, m) in done for t in tasks for m in config.modes))
    if any(t.scenario for t in tasks) and set(config.modes) - {"code"}:
        outcome.notes.append("data tasks run in code mode only (json and text keep no namespace)")
    kernels: KernelFactory = (
        GatewayKernels(config.gateway_url)
        if config.gateway_url
        else LocalKernels(log=config.out / "kernels.log")
    )
    env = kernel_env(settings, config.max_turns)
    limit = asyncio.Semaphore(max(1, config.parallel))
    write_lock = asyncio.Lock()

    if progress:
        progress.start(sum(len(unit.tasks) for unit in units))
    async with httpx.AsyncClient() as http:
        model = create_model(settings, http)

        async def run_unit(unit: Unit) -> None:
            async with limit:
                try:
                    if unit.mode == "code":
                        episodes = await _code_unit(unit, kernels, env, config.timeout)
                    else:
                        episodes = [
                            await run_tool_episode(
                                task,
                                _tool_mode(unit.mode),
                                model,
                                max_turns=config.max_turns,
                            )
                            for task in unit.tasks
                        ]
                except Exception as error:
                    # A kernel that failed, or a bug: this unit is lost, not the whole run.
                    reason = str(error) if isinstance(error, KernelFailure) else repr(error)
                    outcome.failures.append(f"{unit.mode} {unit.tasks[0].id}: {reason}")
                    if progress:
                        progress.update(unit, None, reason)
                    return
            async with write_lock:
                _append(config.results, episodes)
                outcome.ran += len(episodes)
            if progress:
                progress.update(unit, episodes, None)

        await asyncio.gather(*(run_unit(unit) for unit in units))
    outcome.episodes = order(load_results(config.results), tasks, config.modes)
    return outcome


async def _code_unit(
    unit: Unit, kernels: KernelFactory, env: Mapping[str, str], timeout: float
) -> list[Episode]:
    kernel = await kernels.start(env)
    try:
        if unit.tasks[0].scenario is not None:
            return await run_scenario(unit.tasks, kernel, timeout=timeout)
        return [await run_code_episode(unit.tasks[0], kernel, timeout=timeout)]
    finally:
        await kernel.shutdown()


def _drop_cut_line(path: Path) -> None:
    """Remove a last line cut short (see `load_results`), so that new lines start afresh."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        path.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")


def _tool_mode(mode: str) -> Mode:
    if mode == "json":
        return "json"
    if mode == "text":
        return "text"
    raise ValueError(f"unknown mode {mode!r}; choose code, json or text")


def _append(path: Path, episodes: Sequence[Episode]) -> None:
    with path.open("a", encoding="utf-8") as results:
        for episode in episodes:
            results.write(json.dumps(episode.to_json(), ensure_ascii=False) + "\n")
        results.flush()
        os.fsync(results.fileno())


def order(
    episodes: Iterable[Episode], tasks: Sequence[Task], modes: Sequence[str]
) -> list[Episode]:
    """This run's episodes in a stable order (mode, then the suite's task order),
    whatever order they finished in; episodes of other tasks or modes are left out."""
    rank = {task.id: index for index, task in enumerate(tasks)}
    mode_rank = {mode: index for index, mode in enumerate(modes)}
    chosen = [e for e in episodes if e.task in rank and e.mode in mode_rank]
    return sorted(chosen, key=lambda e: (mode_rank[e.mode], rank[e.task]))
