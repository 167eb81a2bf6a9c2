/**
 * How the generated cells of a prompt read as runs: which run of the prompt a step
 * belongs to (once a re-run kept edited steps of an earlier one), and which failed
 * steps a later step of the same run fixed. Pure functions over the cells, so the rules
 * are unit-tested without a browser.
 */

import { generatedBy, ICellInfo, provenance } from './cells';

/** How one generated cell reads among its prompt's cells. */
export interface IStepView {
  /** Its run among the prompt's runs that still have cells, oldest first, from 1. */
  run: number;
  /** How many runs of the prompt have cells in the notebook. */
  runs: number;
  /** The first later step of the same run that succeeded, when this step failed. */
  fixedBy: number | null;
}

/**
 * The view of every generated cell of `promptId`, by cell index.
 *
 * A re-run inserts its steps directly below the prompt, above the steps kept from
 * earlier runs, so a run sitting lower down is an older one; `latest` (the request
 * the prompt cell records, or the one running) is the newest wherever it sits.
 */
export function stepViews(
  cells: readonly ICellInfo[],
  promptId: string,
  latest?: string
): Map<number, IStepView> {
  const indices = generatedBy(cells, promptId);
  const firstIndex = new Map<string, number>();
  for (const index of indices) {
    const requestId = provenance(cells[index])!.request_id;
    if (!firstIndex.has(requestId)) {
      firstIndex.set(requestId, index);
    }
  }
  const order = [...firstIndex.keys()].sort((a, b) => {
    if (a === latest || b === latest) {
      return a === latest ? 1 : -1;
    }
    return firstIndex.get(b)! - firstIndex.get(a)!;
  });
  const views = new Map<number, IStepView>();
  for (const index of indices) {
    const record = provenance(cells[index])!;
    views.set(index, {
      run: order.indexOf(record.request_id) + 1,
      runs: order.length,
      fixedBy:
        record.status === 'error'
          ? fixedBy(cells, indices, record.request_id, record.step)
          : null
    });
  }
  return views;
}

function fixedBy(
  cells: readonly ICellInfo[],
  indices: readonly number[],
  requestId: string,
  step: number
): number | null {
  let best: number | null = null;
  for (const index of indices) {
    const record = provenance(cells[index])!;
    if (
      record.request_id === requestId &&
      record.step > step &&
      record.status === 'ok' &&
      (best === null || record.step < best)
    ) {
      best = record.step;
    }
  }
  return best;
}

/** "step 2", or "run 2 · step 1" when the prompt's cells come from several runs. */
export function stepLabel(step: number, view: IStepView | undefined): string {
  return view && view.runs > 1 ? `run ${view.run} · step ${step}` : `step ${step}`;
}
