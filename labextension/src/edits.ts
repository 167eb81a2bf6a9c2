/**
 * Every change the extension makes to the notebook model: step cells, their statuses,
 * the answer cell, the prompt cell's record, and replacing an earlier run.
 *
 * Bookkeeping is kept out of the undo history (users undo their own edits, not a
 * status pill); replacing an earlier run's cells is one undo step of its own, so
 * `z` / Ctrl+Z brings the old cells back.
 */

import type { ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type { INotebookModel } from '@jupyterlab/notebook';
import type { PartialJSONObject } from '@lumino/coreutils';

import { ANSWER_ROLE, answerIndex, findAnswer, IRunOutcome, promptAfterRun } from './answers';
import {
  executionStatus,
  findAction,
  ICellInfo,
  insertionIndex,
  IProvenance,
  METADATA_KEY,
  provenance,
  RAISES_EXCEPTION,
  reportedLive,
  sourceHash,
  withoutTag,
  withTag
} from './cells';

/** A new step cell, as `action_start` describes it. */
export interface IActionCell {
  promptId: string;
  requestId: string;
  step: number;
  code: string;
  model: string;
  explanation?: string;
  /**
   * Nobody approved it (it awaits approval, or was skipped): it is made a raw cell,
   * which no run command of JupyterLab executes.
   */
  unapproved?: 'pending' | 'skipped';
}

interface IUndoable {
  undoManager?: { stopCapturing(): void };
}

export class NotebookEdits {
  constructor(private readonly notebook: () => INotebookModel) {}

  info(cell: ICellModel): ICellInfo {
    return {
      id: cell.id,
      type: cell.type,
      source: cell.sharedModel.getSource(),
      codeact: cell.getMetadata(METADATA_KEY)
    };
  }

  infos(): ICellInfo[] {
    const cells = this.notebook().cells;
    const infos: ICellInfo[] = [];
    for (let i = 0; i < cells.length; i++) {
      infos.push(this.info(cells.get(i)));
    }
    return infos;
  }

  /** Change the model without an entry in the undo history. */
  quietly(change: () => void): void {
    this.notebook().sharedModel.transact(change, false);
  }

  /**
   * Delete cells of an earlier run, as one undo step of its own. Returns whether
   * any was still there.
   */
  replace(ids: readonly string[]): boolean {
    const notebook = this.notebook();
    const doomed = new Set(ids);
    const indices: number[] = [];
    for (let i = 0; i < notebook.cells.length; i++) {
      if (doomed.has(notebook.cells.get(i).id)) {
        indices.push(i);
      }
    }
    if (!indices.length) {
      return false;
    }
    const shared = notebook.sharedModel;
    const history = (shared as unknown as IUndoable).undoManager;
    // Not merged with whatever the user did just before, nor with what follows.
    history?.stopCapturing();
    shared.transact(() => {
      for (const index of indices.reverse()) {
        shared.deleteCell(index);
      }
    });
    history?.stopCapturing();
    return true;
  }

  /** Insert the cell of an action, or find it when another message already did. */
  upsertAction(action: IActionCell): ICodeCellModel | null {
    const notebook = this.notebook();
    const { promptId, requestId, step, code, model } = action;
    let index = findAction(this.infos(), promptId, requestId, step);
    if (index < 0) {
      const at = insertionIndex(this.infos(), promptId, requestId, step);
      if (at === null) {
        return null;
      }
      const record: IProvenance = {
        version: 1,
        prompt_cell_id: promptId,
        request_id: requestId,
        step,
        model,
        status: action.unapproved ?? 'running',
        source_hash: sourceHash(code)
      };
      if (action.explanation) {
        record.explanation = action.explanation;
      }
      const metadata = { [METADATA_KEY]: record as unknown as PartialJSONObject };
      const cell: nbformat.ICodeCell | nbformat.IRawCell = action.unapproved
        ? { cell_type: 'raw', source: code, metadata }
        : { cell_type: 'code', source: code, metadata, outputs: [], execution_count: null };
      this.quietly(() => notebook.sharedModel.insertCell(at, cell));
      index = at;
    }
    const cell = notebook.cells.get(index);
    if (cell.type !== 'code') {
      return null;
    }
    const codeCell = cell as ICodeCellModel;
    codeCell.trusted = true;
    return codeCell;
  }

  /** The source an action's cell shows now (raw or code), if the cell is there. */
  actionSource(promptId: string, requestId: string, step: number): string | undefined {
    const index = findAction(this.infos(), promptId, requestId, step);
    return index < 0 ? undefined : this.notebook().cells.get(index).sharedModel.getSource();
  }

  /** The code cell of an action, if it is there. */
  actionCell(promptId: string, requestId: string, step: number): ICodeCellModel | null {
    const index = findAction(this.infos(), promptId, requestId, step);
    const cell = index < 0 ? null : this.notebook().cells.get(index);
    return cell?.type === 'code' ? (cell as ICodeCellModel) : null;
  }

  /** Merge `changes` into an action cell's provenance; the tag follows the status. */
  updateAction(
    promptId: string,
    requestId: string,
    step: number,
    changes: Partial<IProvenance>
  ): void {
    const index = findAction(this.infos(), promptId, requestId, step);
    if (index >= 0) {
      this._update(this.notebook().cells.get(index), changes);
    }
  }

  private _update(cell: ICellModel, changes: Partial<IProvenance>): void {
    const record = provenance(this.info(cell));
    if (record === null) {
      return;
    }
    const updated: IProvenance = { ...record, ...changes };
    if (!updated.error_name) {
      delete updated.error_name;
    }
    this.quietly(() => {
      cell.setMetadata(METADATA_KEY, updated as unknown as PartialJSONObject);
      const tags = cell.getMetadata('tags');
      if (updated.status === 'error') {
        cell.setMetadata('tags', withTag(tags, RAISES_EXCEPTION));
      } else if (updated.status !== 'edited' && Array.isArray(tags)) {
        const kept = withoutTag(tags, RAISES_EXCEPTION);
        if (kept.length !== tags.length) {
          if (kept.length) {
            cell.setMetadata('tags', kept);
          } else {
            cell.deleteMetadata('tags');
          }
        }
      }
    });
  }

  /**
   * A generated cell ran as a cell of its own (Run All, Run): its status is the
   * truth about that execution.
   */
  recordExecution(
    cell: ICellModel,
    success: boolean,
    errorName: string | null,
    requestLive: boolean
  ): void {
    const record = provenance(this.info(cell));
    if (record === null || reportedLive(record, requestLive)) {
      return;
    }
    this._update(cell, executionStatus(success, errorName));
  }

  /** The user changed a generated cell's source: its last status no longer speaks for it. */
  recordEdit(cell: ICellModel, requestLive: boolean): void {
    const record = provenance(this.info(cell));
    if (record === null || record.status === 'edited' || reportedLive(record, requestLive)) {
      return;
    }
    this._update(cell, { status: 'edited', error_name: null });
  }

  /**
   * A request ended: nothing of it runs any more. A running step was interrupted; a
   * pending one was never approved, so it must never run by any path: a raw cell.
   */
  settle(requestId: string): void {
    const cells = this.notebook().cells;
    for (let i = 0; i < cells.length; i++) {
      const cell = cells.get(i);
      const record = provenance(this.info(cell));
      if (record?.request_id !== requestId) {
        continue;
      }
      if (cell.type === 'code') {
        (cell as ICodeCellModel).executionState = 'idle';
      }
      const { prompt_cell_id: promptId, step } = record;
      if (record.status === 'pending') {
        this.updateAction(promptId, requestId, step, { status: 'skipped' });
        this.toRaw(promptId, requestId, step);
      } else if (record.status === 'running') {
        this.updateAction(promptId, requestId, step, { status: 'interrupted' });
      }
    }
  }

  /** An action that never ran stays visible but cannot run: it becomes a raw cell. */
  toRaw(promptId: string, requestId: string, step: number): void {
    const index = findAction(this.infos(), promptId, requestId, step);
    const cell = index < 0 ? null : this.notebook().cells.get(index);
    if (!cell || cell.type === 'raw') {
      return;
    }
    this._retype(index, {
      id: cell.id,
      cell_type: 'raw',
      source: cell.sharedModel.getSource(),
      metadata: { [METADATA_KEY]: cell.getMetadata(METADATA_KEY) }
    });
  }

  /**
   * The user approved an action awaiting approval: its raw cell becomes a code cell
   * with `source`, the code that runs now, exactly as approved.
   */
  toCode(
    promptId: string,
    requestId: string,
    step: number,
    source: string
  ): ICodeCellModel | null {
    const index = findAction(this.infos(), promptId, requestId, step);
    const cell = index < 0 ? null : this.notebook().cells.get(index);
    if (!cell) {
      return null;
    }
    if (cell.type !== 'code') {
      this._retype(index, {
        id: cell.id,
        cell_type: 'code',
        source,
        metadata: { [METADATA_KEY]: cell.getMetadata(METADATA_KEY) },
        outputs: [],
        execution_count: null
      });
    }
    const code = this.actionCell(promptId, requestId, step);
    if (code) {
      code.trusted = true;
    }
    return code;
  }

  /** Replace the cell at `index` by `cell` of another type, keeping its id and place. */
  private _retype(index: number, cell: nbformat.ICodeCell | nbformat.IRawCell): void {
    const shared = this.notebook().sharedModel;
    this.quietly(() => {
      shared.deleteCell(index);
      shared.insertCell(index, cell);
    });
  }

  /** Put the final answer in a Markdown cell after the request's steps (once). */
  upsertAnswer(promptId: string, requestId: string, model: string, text: string): boolean {
    const infos = this.infos();
    if (findAnswer(infos, promptId, requestId) >= 0) {
      return true;
    }
    const at = answerIndex(infos, promptId, requestId);
    if (at === null) {
      return false;
    }
    const cell: nbformat.IMarkdownCell = {
      cell_type: 'markdown',
      source: text,
      metadata: {
        [METADATA_KEY]: {
          version: 1,
          role: ANSWER_ROLE,
          prompt_cell_id: promptId,
          request_id: requestId,
          model
        }
      }
    };
    this.quietly(() => this.notebook().sharedModel.insertCell(at, cell));
    return true;
  }

  /** Keep a run's record on its prompt cell (it survives Run All clearing outputs). */
  recordRun(promptId: string, outcome: IRunOutcome): void {
    const cells = this.notebook().cells;
    for (let i = 0; i < cells.length; i++) {
      const cell = cells.get(i);
      if (cell.id === promptId) {
        const record = promptAfterRun(cell.getMetadata(METADATA_KEY), outcome);
        this.quietly(() =>
          cell.setMetadata(METADATA_KEY, record as unknown as PartialJSONObject)
        );
        return;
      }
    }
  }
}
