/**
 * Replay batching: whether a prompt cell that is about to run replays its earlier run
 * (Run All after a restart) or asks the model (Run on that cell).
 *
 * Every cell of one Run All / Run Selected is scheduled in the same browser task, so
 * the batch is complete when that task's microtasks run; only then is each offered
 * prompt's verdict known (docs/protocol.md, "Replay").
 */

export type Verdict = 'replay' | 'model';

/** Decides a verdict for an offered prompt, given every cell id of its batch. */
export type Decide = (promptId: string, batch: ReadonlySet<string>) => boolean;

export class ReplayBatches {
  private _batch: Set<string> | null = null;
  private readonly _offered = new Set<string>();
  private readonly _verdicts = new Map<string, Verdict>();

  constructor(private readonly decide: Decide) {}

  /** A cell is scheduled; `offered` when a replay offer was sent for it. */
  scheduled(cellId: string, offered: boolean): void {
    if (this._batch === null) {
      this._batch = new Set();
      queueMicrotask(() => this._close());
    }
    this._batch.add(cellId);
    if (offered) {
      this._offered.add(cellId);
    }
  }

  /** The verdict for a prompt cell, once; `model` when none was decided. */
  take(cellId: string): Verdict {
    const verdict = this._verdicts.get(cellId) ?? 'model';
    this._verdicts.delete(cellId);
    return verdict;
  }

  private _close(): void {
    const batch = this._batch ?? new Set<string>();
    this._batch = null;
    for (const id of this._offered) {
      this._verdicts.set(id, this.decide(id, batch) ? 'replay' : 'model');
    }
    this._offered.clear();
  }
}
