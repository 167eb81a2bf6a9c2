/**
 * Where generated cells go and which of them a re-run replaces: pure functions over
 * a plain view of the notebook's cells, so the rules are unit-tested without a browser.
 *
 * A generated cell carries `metadata.codeact` (its provenance). It is identified by
 * (prompt cell id, request id, step): every view that sees the same message finds the
 * same cell, which makes insertion idempotent.
 */

import type { ActionStatus } from './protocol';

export const METADATA_KEY = 'codeact';

/** `metadata.codeact` of a generated cell. */
export interface IProvenance {
  /** Version of this record's schema. */
  version: 1;
  prompt_cell_id: string;
  request_id: string;
  step: number;
  model: string;
  /**
   * The truth about the cell's latest execution, whoever ran it; `edited` when its
   * source changed since. `running` and `pending` (awaiting approval) only while the
   * request runs.
   */
  status: ActionStatus | 'edited' | 'running' | 'pending';
  error_name?: string | null;
  /** Hash of the source as generated (or as approved): another hash means an edit. */
  source_hash: string;
  /** The model's answer for this step, as the model saw it (action_end). */
  answer?: string;
  /** What the model was told after "Observation:" (action_end). */
  observed?: string;
  /** The step's prose, shown with the cell (action_start). */
  explanation?: string;
}

/** What the rules need to know of a cell. */
export interface ICellInfo {
  id: string;
  type: string;
  source: string;
  /** `metadata.codeact`, if any. */
  codeact?: unknown;
}

/**
 * The tag JupyterLab, nbclient and papermill read as "this cell is expected to raise":
 * a failed action keeps its traceback but does not stop Run All at that cell.
 */
export const RAISES_EXCEPTION = 'raises-exception';

/** `tags` with `tag` added once (a new array; the input is not changed). */
export function withTag(tags: unknown, tag: string): string[] {
  const list = Array.isArray(tags) ? tags.filter(t => typeof t === 'string') : [];
  return list.includes(tag) ? list : [...list, tag];
}

/** FNV-1a (32 bit) over the UTF-16 code units; enough to notice an edit. */
export function sourceHash(source: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < source.length; i++) {
    hash ^= source.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return 'fnv1a32:' + hash.toString(16).padStart(8, '0');
}

export function provenance(cell: ICellInfo): IProvenance | null {
  const value = cell.codeact;
  if (typeof value !== 'object' || value === null) {
    return null;
  }
  const record = value as Record<string, unknown>;
  if (
    typeof record.prompt_cell_id !== 'string' ||
    typeof record.request_id !== 'string' ||
    typeof record.step !== 'number' ||
    typeof record.source_hash !== 'string'
  ) {
    return null;
  }
  return record as unknown as IProvenance;
}

/**
 * The cell type a generated cell has. An action nobody approved is a raw cell, which
 * no run command executes: one awaiting approval (`pending`, until Run makes it a code
 * cell with the approved source) and one skipped or stopped at the question.
 */
export function expectedType(status: IProvenance['status']): string {
  return status === 'skipped' || status === 'pending' ? 'raw' : 'code';
}

/** Whether the user changed a generated cell since it was generated. */
export function isEdited(cell: ICellInfo): boolean {
  const record = provenance(cell);
  if (record === null) {
    return false;
  }
  return (
    cell.type !== expectedType(record.status) || sourceHash(cell.source) !== record.source_hash
  );
}

/** Indices of the cells generated for `promptId`, in notebook order. */
export function generatedBy(cells: readonly ICellInfo[], promptId: string): number[] {
  const found: number[] = [];
  cells.forEach((cell, index) => {
    if (provenance(cell)?.prompt_cell_id === promptId) {
      found.push(index);
    }
  });
  return found;
}

/** Index of the cell of one action, or -1. */
export function findAction(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string,
  step: number
): number {
  return cells.findIndex(cell => {
    const record = provenance(cell);
    return (
      record !== null &&
      record.prompt_cell_id === promptId &&
      record.request_id === requestId &&
      record.step === step
    );
  });
}

/**
 * Where a new action cell goes: right after the latest earlier step of the same
 * request, else before the first later step of it, else directly below the prompt.
 * Null when the prompt cell is gone (deleted while the request ran).
 */
export function insertionIndex(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string,
  step: number
): number | null {
  const prompt = cells.findIndex(cell => cell.id === promptId);
  if (prompt < 0) {
    return null;
  }
  let before = -1;
  let beforeStep = -Infinity;
  let after = -1;
  let afterStep = Infinity;
  cells.forEach((cell, index) => {
    const record = provenance(cell);
    if (record?.prompt_cell_id !== promptId || record.request_id !== requestId) {
      return;
    }
    if (record.step < step && record.step > beforeStep) {
      before = index;
      beforeStep = record.step;
    } else if (record.step > step && record.step < afterStep) {
      after = index;
      afterStep = record.step;
    }
  });
  if (before >= 0) {
    return before + 1;
  }
  if (after >= 0) {
    return after;
  }
  return prompt + 1;
}

export interface IReplacement {
  /** Ids of unedited cells from earlier runs of the prompt: deleted. */
  remove: string[];
  /** Ids of edited ones: left exactly as they are. */
  keep: string[];
}

/** What a new request of `promptId` does to the cells its earlier runs generated. */
export function replacement(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string
): IReplacement {
  const result: IReplacement = { remove: [], keep: [] };
  for (const index of generatedBy(cells, promptId)) {
    const cell = cells[index];
    if (provenance(cell)?.request_id === requestId) {
      continue;
    }
    (isEdited(cell) ? result.keep : result.remove).push(cell.id);
  }
  return result;
}

/**
 * Whether a prompt cell, scheduled together with `scheduled`, should replay its
 * earlier run rather than ask the model: yes when any of its generated cells runs in
 * the same batch (Run All, Run Selected over the prompt and its cells), since asking
 * the model too would do the work twice; and, for a prompt `answered` without cells
 * that run (prose only, failed, stopped, every action skipped), when it runs with
 * other cells. Run on its own, a
 * prompt asks the model.
 */
export function shouldReplay(
  cells: readonly ICellInfo[],
  promptId: string,
  scheduled: ReadonlySet<string>,
  answered = false
): boolean {
  // Only code cells re-run the work: a raw one (an action skipped or stopped at the
  // approval question) never runs, so a prompt with nothing else answered without cells.
  const runnable = generatedBy(cells, promptId).filter(index => cells[index].type === 'code');
  if (runnable.some(index => scheduled.has(cells[index].id))) {
    return true;
  }
  return answered && runnable.length === 0 && scheduled.size > 1;
}

/**
 * The status a generated cell gets from an execution of its own (Run All, Run):
 * the truth about its latest run, whoever ran it.
 */
export function executionStatus(
  success: boolean,
  errorName: string | null | undefined
): { status: ActionStatus; error_name: string | null } {
  if (success) {
    return { status: 'ok', error_name: null };
  }
  if (errorName === 'KeyboardInterrupt') {
    return { status: 'interrupted', error_name: errorName };
  }
  return { status: 'error', error_name: errorName || null };
}

/**
 * Whether the status a generated cell shows is the comm's to report: `running` or
 * `pending` of a request this page follows now. Such a status left by a request nobody
 * follows any more (the page was reloaded mid-run, the browser closed) must not
 * outlive the cell's next execution or edit.
 */
export function reportedLive(record: IProvenance, requestLive: boolean): boolean {
  return requestLive && (record.status === 'running' || record.status === 'pending');
}

/** `tags` without `tag` (a new array). */
export function withoutTag(tags: unknown, tag: string): string[] {
  const list = Array.isArray(tags) ? tags.filter(t => typeof t === 'string') : [];
  return list.filter(t => t !== tag);
}

/** The steps a replay stands for: the prompt's generated cells, as they run, in order. */
export function replaySteps(
  cells: readonly ICellInfo[],
  promptId: string
): { step: number; code: string; status: string }[] {
  return generatedBy(cells, promptId).map(index => {
    const record = provenance(cells[index])!;
    return { step: record.step, code: cells[index].source, status: record.status };
  });
}
