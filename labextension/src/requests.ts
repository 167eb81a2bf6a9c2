/**
 * The state of one request as the comm reports it: which step runs, whether it waits
 * for approval, what the progress line says, and whether the earlier run's cells were
 * replaced yet. A plain state machine with no JupyterLab in it, unit-tested on its own.
 *
 *   thinking ──text──▶ writing ──action_start──▶ running ──action_end──▶ thinking …
 *                                      │ (approval = ask)                   ▲
 *                                      └──▶ awaiting approval ──answered──▶ running
 *   any state ──request_end / the execution is done──▶ ended
 */

import type { IRequestEnd } from './protocol';

export type RequestState = 'thinking' | 'writing' | 'running' | 'approval' | 'ended';

/** What the prompt cell's progress bar shows. */
export interface IRequestView {
  requestId: string;
  promptId: string;
  step: number;
  tokens: number;
  estimated: boolean;
  /** Date.now() when the request started. */
  started: number;
  state: RequestState;
  message: string;
}

/** The Run / Skip controls of an action awaiting approval. */
export interface IApproval {
  step: number;
  run(): void;
  skip(): void;
}

/** The fields of a `progress` message that change the view. */
export interface IProgressUpdate {
  step: number;
  state?: string;
  message?: string;
  tokens?: number;
  estimated?: boolean;
}

export class RequestMachine implements IRequestView {
  step = 0;
  tokens = 0;
  estimated = false;
  state: RequestState = 'thinking';
  message = '';
  /** The step whose window (action_start .. action_end) is open. */
  current: number | null = null;
  /** Steps whose cells this request made (action_start seen). */
  readonly actions = new Set<number>();
  /** Whether the earlier runs' cells were replaced (by the first new cell). */
  replaced = false;
  /** How the request ended, once it did. */
  ending: IRequestEnd | null = null;
  private readonly _approved = new Set<number>();

  /**
   * @param approvalMode every action waits for approval (`request_start.approval`).
   */
  constructor(
    readonly requestId: string,
    readonly promptId: string,
    readonly parentMsgId: string,
    readonly started: number,
    public approvalMode = false
  ) {}

  get ended(): boolean {
    return this.state === 'ended';
  }

  progress(update: IProgressUpdate): void {
    if (this.ended) {
      return;
    }
    this.step = update.step;
    if (typeof update.tokens === 'number') {
      this.tokens = update.tokens;
      this.estimated = update.estimated === true;
    }
    if (this.current !== null) {
      return;
    }
    if (update.state === 'writing') {
      this.state = 'writing';
      this.message = 'writing…';
    } else if (update.state === 'thinking') {
      this.state = 'thinking';
      this.message = update.message ?? '';
    }
  }

  actionStart(step: number): void {
    if (this.ended) {
      return;
    }
    this.step = step;
    this.current = step;
    this.actions.add(step);
    this.message = '';
    this.state = this.awaitsApproval(step) ? 'approval' : 'running';
  }

  /** The kernel asked to approve `step` (`approval_request`). */
  approvalAsked(step: number): void {
    if (this.ended || this._approved.has(step)) {
      return;
    }
    this.approvalMode = true;
    if (this.current === step) {
      this.state = 'approval';
    }
  }

  /** The user answered the approval question of `step` (run or skip). */
  answered(step: number): void {
    this._approved.add(step);
    if (this.current === step && this.state === 'approval') {
      this.state = 'running';
    }
  }

  actionEnd(step: number): void {
    if (this.ended) {
      return;
    }
    this._approved.add(step);
    this.actions.add(step);
    if (this.current === step) {
      this.current = null;
    }
    this.state = 'thinking';
    this.message = '';
  }

  end(ending: IRequestEnd | null): void {
    if (ending) {
      this.ending = ending;
    }
    this.state = 'ended';
    this.current = null;
  }

  /** Whether `step` still waits for the user's approval. */
  awaitsApproval(step: number): boolean {
    return this.approvalMode && !this._approved.has(step);
  }

  /**
   * Whether an input request of this execution, now, may be a question the kernel
   * announces on the comm (approve this action?) rather than `input()` in an action.
   * In approval mode it may be, whatever the state: the next step's question can
   * overtake the running step's `action_end` and its own announcement (stdin and IOPub
   * are different channels). The desk then holds it for its announcement; an action's
   * own `input()` has none and is shown in the step's cell a moment later.
   */
  expectsQuestion(): boolean {
    return this.approvalMode && !this.ended;
  }

  /** The step whose action runs now: `input()` belongs in its cell. */
  runningStep(): number | null {
    return this.state === 'running' ? this.current : null;
  }
}
