/**
 * Which cells are prompts, and how the notebook says so: the kernel decides (the
 * `classify` message, docs/protocol.md), the cell records it in `metadata.codeact`
 * (`role: "prompt"`), and the view shows it. Pure rules and a debouncing client,
 * unit-tested without a browser.
 */

import { sourceHash } from './cells';

export const PROMPT_ROLE = 'prompt';

/** What the kernel's routing made of a source. */
export type CellKind = 'natural_language' | 'code';

/** `metadata.codeact` of a prompt cell (before its first run: only version and role). */
export interface IPromptRecord {
  version: 1;
  role: typeof PROMPT_ROLE;
  request_id?: string;
  model?: string;
  status?: string;
  trajectory?: unknown;
}

export function promptRecord(codeact: unknown): IPromptRecord | null {
  if (typeof codeact !== 'object' || codeact === null || Array.isArray(codeact)) {
    return null;
  }
  return (codeact as { role?: unknown }).role === PROMPT_ROLE
    ? (codeact as IPromptRecord)
    : null;
}

/** What `metadata.codeact` of a code cell becomes once the kernel classified it. */
export type Marking = { set: IPromptRecord } | 'delete' | 'keep';

export function marking(codeact: unknown, kind: CellKind): Marking {
  const prompt = promptRecord(codeact);
  if (kind === 'natural_language') {
    // Anything else CodeAct wrote there (a generated cell's provenance) is not ours
    // to replace: a generated cell whose code reads like prose is still an action.
    return codeact === undefined || codeact === null
      ? { set: { version: 1, role: PROMPT_ROLE } }
      : 'keep';
  }
  // A cell typed back into code loses a bare mark; a run's record is history and stays
  // (the view stops showing it as a prompt all the same).
  return prompt !== null && prompt.request_id === undefined && prompt.trajectory === undefined
    ? 'delete'
    : 'keep';
}

export interface IClassifierOptions {
  /** Send `classify`; false when there is no comm (yet): the cell is asked again later. */
  send(cellId: string, source: string): boolean;
  /** Quiet time after the last change before asking, in ms. */
  delay?: number;
  /** An unanswered question is asked again after this long (a restart lost it), in ms. */
  retry?: number;
  now?: () => number;
  /** Sources longer than this are not asked about (labcomm.CLASSIFY_LIMIT: the kernel
   * does not answer for them). */
  maxLength?: number;
}

/** An answer of the kernel, as the protocol carries it. */
export interface IClassification {
  cell_id: string;
  source_hash: string;
  kind: CellKind;
}

/**
 * Asks the kernel about code cells while the user types: once per distinct source,
 * after a quiet time, and keeps the latest answer per cell.
 */
export class PromptClassifier {
  private readonly _known = new Map<string, { hash: string; kind: CellKind }>();
  private readonly _asked = new Map<string, { hash: string; at: number }>();
  private readonly _waiting = new Map<
    string,
    { source: string; timer: ReturnType<typeof setTimeout> }
  >();
  private readonly _delay: number;
  private readonly _retry: number;
  private readonly _maxLength: number;
  private readonly _now: () => number;

  constructor(private readonly options: IClassifierOptions) {
    this._delay = options.delay ?? 300;
    this._retry = options.retry ?? 10_000;
    this._maxLength = options.maxLength ?? 20_000;
    this._now = options.now ?? Date.now;
  }

  /** The cell's source now; asks (debounced) when the kernel has not judged it yet. */
  observe(cellId: string, source: string): void {
    const waiting = this._waiting.get(cellId);
    if (waiting?.source === source) {
      return;
    }
    if (waiting) {
      clearTimeout(waiting.timer);
      this._waiting.delete(cellId);
    }
    if (source.length > this._maxLength) {
      return;
    }
    const hash = sourceHash(source);
    const asked = this._asked.get(cellId);
    if (
      this._known.get(cellId)?.hash === hash ||
      (asked?.hash === hash && this._now() - asked.at < this._retry)
    ) {
      return;
    }
    const timer = setTimeout(() => {
      this._waiting.delete(cellId);
      if (this.options.send(cellId, source)) {
        this._asked.set(cellId, { hash, at: this._now() });
      }
    }, this._delay);
    this._waiting.set(cellId, { source, timer });
  }

  /**
   * Take an answer; returns its kind, or null when it is about a source the cell no
   * longer has (`current`: the cell's source now, null when the cell is gone).
   */
  receive(answer: IClassification, current: string | null): CellKind | null {
    if (this._asked.get(answer.cell_id)?.hash === answer.source_hash) {
      this._asked.delete(answer.cell_id);
    }
    if (current === null || sourceHash(current) !== answer.source_hash) {
      return null;
    }
    this._known.set(answer.cell_id, { hash: answer.source_hash, kind: answer.kind });
    return answer.kind;
  }

  /** The latest answer for a cell, perhaps about a source typed over since. */
  kind(cellId: string): CellKind | undefined {
    return this._known.get(cellId)?.kind;
  }

  dispose(): void {
    for (const { timer } of this._waiting.values()) {
      clearTimeout(timer);
    }
    this._waiting.clear();
  }
}
