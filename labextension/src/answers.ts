/**
 * What a run leaves besides its step cells: the final answer's Markdown cell after the
 * steps, and the prompt cell's record of the run (docs/protocol.md, "What the notebook
 * records"). Pure functions over the plain cell view of cells.ts.
 */

import { generatedBy, ICellInfo, provenance, replacement } from './cells';
import { IPromptRecord, PROMPT_ROLE, promptRecord } from './prompts';

export const ANSWER_ROLE = 'answer';

/** `metadata.codeact` of a final answer's Markdown cell. */
export interface IAnswerRecord {
  version: 1;
  role: typeof ANSWER_ROLE;
  prompt_cell_id: string;
  request_id: string;
  model: string;
}

export function answerRecord(codeact: unknown): IAnswerRecord | null {
  if (typeof codeact !== 'object' || codeact === null || Array.isArray(codeact)) {
    return null;
  }
  const record = codeact as Record<string, unknown>;
  return record.role === ANSWER_ROLE &&
    typeof record.prompt_cell_id === 'string' &&
    typeof record.request_id === 'string'
    ? (record as unknown as IAnswerRecord)
    : null;
}

/** Index of the answer cell of one request, or -1. */
export function findAnswer(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string
): number {
  return cells.findIndex(cell => {
    const record = answerRecord(cell.codeact);
    return record?.prompt_cell_id === promptId && record.request_id === requestId;
  });
}

/**
 * The cells of earlier runs of `promptId` that the new request's first cell replaces:
 * their unedited step cells and their answer cells. Edited step cells stay.
 */
export function superseded(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string
): string[] {
  const answers = cells
    .filter(cell => {
      const record = answerRecord(cell.codeact);
      return record?.prompt_cell_id === promptId && record.request_id !== requestId;
    })
    .map(cell => cell.id);
  return [...replacement(cells, promptId, requestId).remove, ...answers];
}

/**
 * Where a request's answer cell goes: after its last step cell, else directly below
 * the prompt. Null when the prompt cell is gone.
 */
export function answerIndex(
  cells: readonly ICellInfo[],
  promptId: string,
  requestId: string
): number | null {
  let last = cells.findIndex(cell => cell.id === promptId);
  if (last < 0) {
    return null;
  }
  for (const index of generatedBy(cells, promptId)) {
    if (provenance(cells[index])?.request_id === requestId) {
      last = Math.max(last, index);
    }
  }
  return last + 1;
}

/** The outcome of a run, as `request_end` reports it. */
export interface IRunOutcome {
  request_id: string;
  model: string;
  status: string;
  record: unknown;
}

/**
 * The prompt cell's `metadata.codeact` after a run: what it had (the prompt mark),
 * with this run's record. A record of an earlier run never stays next to a newer
 * run's id.
 */
export function promptAfterRun(existing: unknown, outcome: IRunOutcome): IPromptRecord {
  const kept = promptRecord(existing) ?? { version: 1, role: PROMPT_ROLE };
  const result: IPromptRecord = {
    ...kept,
    version: 1,
    role: PROMPT_ROLE,
    request_id: outcome.request_id,
    model: outcome.model,
    status: outcome.status
  };
  if (outcome.record !== null && outcome.record !== undefined) {
    result.trajectory = outcome.record;
  } else {
    delete result.trajectory;
  }
  return result;
}

/** Whether a prompt cell holds an answered run (so Run All can replay it). */
export function isAnswered(cell: ICellInfo): boolean {
  return typeof promptRecord(cell.codeact)?.request_id === 'string';
}
