/**
 * The comm protocol between the codeact kernel and this extension, version 1.
 *
 * docs/protocol.md is the reference; codeact_kernel/labcomm.py is the kernel side.
 * Receivers ignore message types and fields they do not know, so additions that
 * older peers can ignore keep the version; anything else bumps it.
 */

import type * as nbformat from '@jupyterlab/nbformat';

export const COMM_TARGET = 'codeact.lab';
export const PROTOCOL_VERSION = 1;
export const EXTENSION_VERSION = '0.1.0';

export type ActionStatus = 'ok' | 'error' | 'interrupted' | 'skipped';

interface IRequestScoped {
  request_id: string;
  cell_id: string;
}

export interface IWelcome {
  type: 'welcome';
  protocol: number;
  kernel: string;
}

export interface IUnsupported {
  type: 'unsupported';
  protocol: unknown;
  supported: number[];
}

export interface IRequestStart extends IRequestScoped {
  type: 'request_start';
  model: string;
  started: number;
  /** `ask` when every action waits for approval (its stdin question follows `action_start`). */
  approval?: 'ask' | 'auto';
}

export interface IProgress extends IRequestScoped {
  type: 'progress';
  step: number;
  state?: string;
  message?: string;
  tokens?: number;
  estimated?: boolean;
}

export interface IActionStart extends IRequestScoped {
  type: 'action_start';
  step: number;
  code: string;
  model: string;
  /** The step's prose (the answer without its code), shown with the step's cell. */
  explanation?: string;
}

export interface IApprovalRequest extends IRequestScoped {
  type: 'approval_request';
  step: number;
  prompt: string;
}

export interface IActionEnd extends IRequestScoped {
  type: 'action_end';
  step: number;
  code: string;
  model: string;
  status: ActionStatus;
  outputs: nbformat.IOutput[];
  execution_count: number | null;
  error_name: string | null;
  /** The model's answer for this step, as the model sees it in the conversation. */
  answer?: string;
  /** What the model was told after "Observation:". */
  observed?: string;
}

export interface IRequestEnd extends IRequestScoped {
  type: 'request_end';
  status: 'ok' | 'error' | 'interrupted';
  /** Actions taken (the step cells), not counting the final answer. */
  steps: number;
  tokens: number;
  seconds: number;
  error: { ename: string; evalue: string } | null;
  /** The trajectory record (codeact_kernel/trajectory.py), or null when none was made. */
  record?: Record<string, unknown> | null;
  /** The final answer for a Markdown cell after the steps; null: it stays in the prompt. */
  answer_cell?: string | null;
}

export interface IReplayQuery extends IRequestScoped {
  type: 'replay_query';
  prompt: string;
}

/** The kernel's answer to `classify`: whether that source would go to the model. */
export interface IClassified {
  type: 'classified';
  cell_id: string;
  /** sourceHash() of the source it classified. */
  source_hash: string;
  kind: 'natural_language' | 'code';
}

export type KernelMessage =
  | IWelcome
  | IUnsupported
  | IRequestStart
  | IProgress
  | IActionStart
  | IApprovalRequest
  | IActionEnd
  | IRequestEnd
  | IReplayQuery
  | IClassified;

/** comm_open data. */
export interface IHello {
  protocol: number;
  extension: string;
}

export interface IReplayStep {
  step: number;
  code: string;
  status: string;
}

/** Sent while the user edits a code cell: is this source a prompt? */
export interface IClassify {
  type: 'classify';
  cell_id: string;
  source: string;
}

/** Sent just before a prompt cell that has generated cells is executed. */
export interface IReplayOffer {
  type: 'replay_offer';
  cell_id: string;
  source: string;
  outputs: nbformat.IOutput[];
  steps: IReplayStep[];
}

const STATUSES: ReadonlySet<string> = new Set(['ok', 'error', 'interrupted', 'skipped']);

type Check = (value: unknown) => boolean;
const isString: Check = v => typeof v === 'string';
const isNumber: Check = v => typeof v === 'number' && Number.isFinite(v);
const isStep: Check = v => Number.isInteger(v) && (v as number) >= 1;
const isCount: Check = v => v === null || Number.isInteger(v);
const isNameOrNull: Check = v => v === null || typeof v === 'string';

const REQUIRED: Record<string, Record<string, Check>> = {
  welcome: { protocol: isNumber },
  unsupported: {},
  request_start: { request_id: isString, cell_id: isString, model: isString },
  progress: { request_id: isString, cell_id: isString, step: isStep },
  action_start: {
    request_id: isString,
    cell_id: isString,
    step: isStep,
    code: isString
  },
  approval_request: {
    request_id: isString,
    cell_id: isString,
    step: isStep,
    prompt: isString
  },
  action_end: {
    request_id: isString,
    cell_id: isString,
    step: isStep,
    code: isString,
    status: v => typeof v === 'string' && STATUSES.has(v),
    outputs: Array.isArray,
    execution_count: isCount,
    error_name: isNameOrNull
  },
  request_end: { request_id: isString, cell_id: isString },
  replay_query: { request_id: isString, cell_id: isString, prompt: isString },
  classified: {
    cell_id: isString,
    source_hash: isString,
    kind: v => v === 'natural_language' || v === 'code'
  }
};

/**
 * The message in a comm_msg's data, or null when it is not one this version knows
 * (an unknown type from a newer kernel, or a malformed known one).
 */
export function parseKernelMessage(data: unknown): KernelMessage | null {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return null;
  }
  const record = data as Record<string, unknown>;
  const type = record['type'];
  if (typeof type !== 'string' || !Object.prototype.hasOwnProperty.call(REQUIRED, type)) {
    return null;
  }
  for (const [field, check] of Object.entries(REQUIRED[type])) {
    if (!check(record[field])) {
      return null;
    }
  }
  return record as unknown as KernelMessage;
}
