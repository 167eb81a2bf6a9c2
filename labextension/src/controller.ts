/**
 * One notebook document's side of the protocol (docs/protocol.md): it routes the
 * kernel's messages to the modules that do the work — the comm (comm.ts), the request
 * state (requests.ts), output diversion (outputs.ts), stdin (stdin.ts), replay
 * batching (replay.ts) and the notebook edits (edits.ts).
 *
 * There is one controller per document context, shared by every view of it, so each
 * generated cell is inserted once however many views are open; the kernel talks only
 * to the comm of the client that ran the cell, so other browsers (collaboration) see
 * the cells through the shared model.
 */

import type { ISessionContext } from '@jupyterlab/apputils';
import type { Cell, CodeCell, ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel } from '@jupyterlab/notebook';
import type { KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { isAnswered, superseded } from './answers';
import { generatedBy, provenance, replaySteps, shouldReplay, sourceHash } from './cells';
import { KernelLink } from './comm';
import { NotebookEdits } from './edits';
import { ActionOutputs } from './outputs';
import type {
  IActionEnd,
  IActionStart,
  IApprovalRequest,
  IClassified,
  IClassify,
  IProgress,
  IReplayOffer,
  IReplayQuery,
  IRequestEnd,
  IRequestStart,
  KernelMessage as CodeActMessage
} from './protocol';
import { ReplayBatches } from './replay';
import { IApproval, IRequestView, RequestMachine } from './requests';
import { Future, IInputArea, StdinRouter } from './stdin';

export type { IApproval, IRequestView, RequestState } from './requests';

/** A running request: its state, its diverted outputs, its approval controls. */
interface IActive {
  machine: RequestMachine;
  outputs: ActionOutputs;
  approvals: Map<number, IApproval>;
  unhook: () => void;
}

export class NotebookController {
  private readonly _changed = new Signal<this, void>(this);
  private readonly _classified = new Signal<this, IClassified>(this);
  private readonly _requests = new Map<string, IActive>();
  private readonly _edits: NotebookEdits;
  private readonly _link: KernelLink;
  private readonly _replays: ReplayBatches;
  private readonly _stdin: StdinRouter;
  /** Executions of offered prompt cells: the replay question may come first. */
  private readonly _replayOwners = new Set<string>();
  /** Executions whose request ended (until the execution is done). */
  private readonly _ended = new Set<string>();
  private readonly _watchedCells = new WeakSet<ICellModel>();
  private _disposed = false;

  /**
   * @param context the notebook document.
   * @param cellWidgets the cell widgets of the document's views, for futures.
   */
  constructor(
    readonly context: DocumentRegistry.IContext<INotebookModel>,
    private readonly cellWidgets: (cellId: string) => Cell[]
  ) {
    this._edits = new NotebookEdits(() => this.context.model);
    this._replays = new ReplayBatches((id, batch) => {
      const cells = this._edits.infos();
      const prompt = cells.find(cell => cell.id === id);
      return shouldReplay(cells, id, batch, prompt !== undefined && isAnswered(prompt));
    });
    this._stdin = new StdinRouter(
      {
        expects: owner => this._expectsQuestion(owner),
        stale: owner => this._ended.has(owner),
        inputArea: owner => this._inputArea(owner),
        actionComing: owner => {
          const machine = this._activeFor(owner)?.machine;
          return machine !== undefined && !machine.ended && machine.runningStep() === null;
        },
        done: owner => this._executionDone(owner)
      },
      () => this._link.kernel
    );
    this._link = new KernelLink(context.sessionContext, {
      message: (data, parentMsgId) => this._dispatch(data, parentMsgId),
      reset: () => this._finishAll()
    });
    this._watchEdits();
  }

  /** Emitted when anything the views show changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted with each answer of the kernel to `classify`. */
  get classified(): ISignal<this, IClassified> {
    return this._classified;
  }

  /** Ask the kernel whether `source` is a prompt; false when there is no comm yet. */
  classify(cellId: string, source: string): boolean {
    if (!this._link.isCodeAct) {
      return false;
    }
    const message: IClassify = { type: 'classify', cell_id: cellId, source };
    return this._link.send(message);
  }

  get sessionContext(): ISessionContext {
    return this.context.sessionContext;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._finishAll();
    this._link.dispose();
    Signal.clearData(this);
  }

  /** The request running for a prompt cell, if any. */
  request(promptId: string): IRequestView | undefined {
    for (const active of this._requests.values()) {
      if (active.machine.promptId === promptId) {
        return active.machine;
      }
    }
    return undefined;
  }

  /** The approval a generated cell waits for, if any. */
  approval(cell: ICellModel): IApproval | undefined {
    const record = provenance(this._edits.info(cell));
    if (record === null) {
      return undefined;
    }
    return this._requests.get(record.request_id)?.approvals.get(record.step);
  }

  /** Stop: interrupt the kernel, as the toolbar's button does. */
  stop(): void {
    void this.sessionContext.session?.kernel?.interrupt();
  }

  // --- the user's own executions ------------------------------------------------------

  /**
   * A code cell of this notebook is about to be executed (NotebookActions'
   * executionScheduled fires just before the execute request is sent).
   */
  onExecutionScheduled(cell: Cell): void {
    if (!this._link.isCodeAct || cell.model.type !== 'code') {
      return;
    }
    const id = cell.model.id;
    const cells = this._edits.infos();
    const info = cells.find(candidate => candidate.id === id);
    const offer = generatedBy(cells, id).length > 0 || (info !== undefined && isAnswered(info));
    if (offer) {
      // On the shell channel this precedes the execute request, so the kernel has
      // the offer when it starts the cell (docs/protocol.md, "Replay").
      const message: IReplayOffer = {
        type: 'replay_offer',
        cell_id: id,
        source: cell.model.sharedModel.getSource(),
        outputs: (cell.model as ICodeCellModel).outputs.toJSON(),
        steps: replaySteps(cells, id)
      };
      this._link.send(message);
    }
    this._replays.scheduled(id, offer);
    queueMicrotask(() => {
      const future = (cell as CodeCell).outputArea?.future;
      if (future) {
        if (offer) {
          this._replayOwners.add(future.msg.header.msg_id);
        }
        this._stdin.watch(future as Future);
      }
    });
  }

  /** A cell finished executing: a generated cell's status is the truth about it. */
  onExecuted(cell: Cell, success: boolean, errorName: string | null): void {
    this._edits.recordExecution(cell.model, success, errorName, this._live(cell.model));
  }

  /** Whether the request that made a generated cell runs now, reported by this comm. */
  private _live(cell: ICellModel): boolean {
    const record = provenance(this._edits.info(cell));
    return record !== null && this._requests.has(record.request_id);
  }

  /** An edit makes a generated cell's status `edited` until it runs again. */
  private _watchEdits(): void {
    const cells = this.context.model.cells;
    const watch = (cell: ICellModel): void => {
      if (this._watchedCells.has(cell)) {
        return;
      }
      this._watchedCells.add(cell);
      cell.sharedModel.changed.connect((_, change) => {
        if (change.sourceChange && !this._disposed) {
          this._edits.recordEdit(cell, this._live(cell));
        }
      });
    };
    for (let i = 0; i < cells.length; i++) {
      watch(cells.get(i));
    }
    cells.changed.connect((_, change) => {
      if (change.type === 'add' || change.type === 'set') {
        change.newValues.forEach(watch);
      }
    });
  }

  // --- stdin routes -------------------------------------------------------------------

  private _activeFor(owner: string): IActive | undefined {
    for (const active of this._requests.values()) {
      if (active.machine.parentMsgId === owner) {
        return active;
      }
    }
    return undefined;
  }

  private _expectsQuestion(owner: string): boolean {
    const active = this._activeFor(owner);
    if (active) {
      return active.machine.expectsQuestion();
    }
    return this._replayOwners.has(owner);
  }

  private _inputArea(owner: string): IInputArea | null {
    const machine = this._activeFor(owner)?.machine;
    const step = machine?.runningStep() ?? null;
    if (!machine || step === null) {
      return null;
    }
    const cell = this._edits.actionCell(machine.promptId, machine.requestId, step);
    const widget = cell ? this.cellWidgets(cell.id)[0] : undefined;
    const area = (widget as CodeCell | undefined)?.outputArea;
    return area ? (area as unknown as IInputArea) : null;
  }

  private _executionDone(owner: string): void {
    this._replayOwners.delete(owner);
    this._ended.delete(owner);
    for (const active of [...this._requests.values()]) {
      if (active.machine.parentMsgId === owner) {
        this._finish(active);
      }
    }
  }

  // --- messages from the kernel -------------------------------------------------------

  private _dispatch(data: CodeActMessage, parentMsgId: string): void {
    switch (data.type) {
      case 'welcome':
        // Views waiting for the comm (to classify cells) try again.
        this._changed.emit();
        return;
      case 'classified':
        this._classified.emit(data);
        return;
      case 'unsupported':
        return;
      case 'request_start':
        return this._requestStart(data, parentMsgId);
      case 'progress':
        return this._progress(data);
      case 'action_start':
        return this._actionStart(data, parentMsgId);
      case 'approval_request':
        return this._approvalRequest(data, parentMsgId);
      case 'action_end':
        return this._actionEnd(data);
      case 'request_end':
        return this._requestEnd(data);
      case 'replay_query':
        return this._replayQuery(data, parentMsgId);
    }
  }

  private _requestStart(data: IRequestStart, parentMsgId: string): void {
    // The earlier run's cells stay until something of this run replaces them.
    const active = this._track(data.request_id, data.cell_id, parentMsgId);
    active.machine.approvalMode = data.approval === 'ask';
    this._replayOwners.delete(parentMsgId);
    this._changed.emit();
  }

  /** The state of a request, created on its first message (a view may miss some). */
  private _track(requestId: string, promptId: string, parentMsgId: string): IActive {
    const known = this._requests.get(requestId);
    if (known) {
      return known;
    }
    const active: IActive = {
      machine: new RequestMachine(requestId, promptId, parentMsgId, Date.now()),
      outputs: new ActionOutputs(),
      approvals: new Map(),
      unhook: () => undefined
    };
    this._requests.set(requestId, active);
    const kernel = this._link.kernel;
    if (kernel && parentMsgId) {
      const hook = (msg: KernelMessage.IIOPubMessage): boolean => active.outputs.route(msg);
      kernel.registerMessageHook(parentMsgId, hook);
      active.unhook = () => {
        if (!kernel.isDisposed) {
          kernel.removeMessageHook(parentMsgId, hook);
        }
      };
    }
    for (const widget of this.cellWidgets(promptId)) {
      const future = (widget as CodeCell).outputArea?.future;
      if (future && future.msg.header.msg_id === parentMsgId) {
        this._stdin.watch(future as Future);
      }
    }
    return active;
  }

  /** Replace the earlier runs' cells, once, when this run makes its first cell. */
  private _replaceEarlierRun(active: IActive): void {
    const machine = active.machine;
    if (machine.replaced) {
      return;
    }
    machine.replaced = true;
    this._edits.replace(superseded(this._edits.infos(), machine.promptId, machine.requestId));
  }

  private _progress(data: IProgress): void {
    this._requests.get(data.request_id)?.machine.progress(data);
    this._changed.emit();
  }

  private _actionStart(data: IActionStart, parentMsgId: string): void {
    const active = this._track(data.request_id, data.cell_id, parentMsgId);
    this._replaceEarlierRun(active);
    active.machine.actionStart(data.step);
    const pending = active.machine.state === 'approval';
    // An action awaiting approval is a raw cell: no run command of JupyterLab (Run,
    // Run All, the toolbar's ▶) executes it; only the user's Run makes it code.
    const cell = this._edits.upsertAction({
      promptId: data.cell_id,
      requestId: data.request_id,
      step: data.step,
      code: data.code,
      model: data.model,
      explanation: data.explanation,
      ...(pending ? { unapproved: 'pending' as const } : {})
    });
    if (cell) {
      cell.executionState = 'running';
    }
    this._edits.updateAction(data.cell_id, data.request_id, data.step, {
      status: pending ? 'pending' : 'running'
    });
    active.outputs.open(data.step, cell?.outputs ?? null);
    this._changed.emit();
  }

  private _approvalRequest(data: IApprovalRequest, owner: string): void {
    const active = this._requests.get(data.request_id);
    if (!active) {
      return;
    }
    const machine = active.machine;
    machine.approvalAsked(data.step);
    this._edits.updateAction(data.cell_id, data.request_id, data.step, { status: 'pending' });
    // Made before this view knew approval was on: nothing may run it now either.
    this._edits.toRaw(data.cell_id, data.request_id, data.step);
    this._stdin.desk.announce({
      owner,
      prompt: data.prompt,
      asked: reply => {
        const answer = (word: 'y' | 'n'): void => {
          if (!active.approvals.delete(data.step)) {
            return;
          }
          // The code the user sees (and may have edited) is the code that runs; an
          // action whose cell is gone runs nothing.
          const code = this._edits.actionSource(data.cell_id, data.request_id, data.step);
          if (code === undefined) {
            word = 'n';
          }
          if (word === 'y' && code !== undefined) {
            // Approved: the raw cell becomes the code cell that shows what runs, and
            // its outputs go there (before the reply lets the kernel run it).
            const approved = this._edits.toCode(data.cell_id, data.request_id, data.step, code);
            if (approved) {
              approved.executionState = 'running';
              active.outputs.open(data.step, approved.outputs);
            }
            this._edits.updateAction(data.cell_id, data.request_id, data.step, {
              status: 'running',
              source_hash: sourceHash(code)
            });
          }
          reply(JSON.stringify(code === undefined ? { answer: word } : { answer: word, code }));
          machine.answered(data.step);
          this._changed.emit();
        };
        active.approvals.set(data.step, {
          step: data.step,
          run: () => answer('y'),
          skip: () => answer('n')
        });
        this._changed.emit();
      }
    });
    this._changed.emit();
  }

  private _actionEnd(data: IActionEnd): void {
    const active = this._requests.get(data.request_id);
    const cell = this._edits.upsertAction({
      promptId: data.cell_id,
      requestId: data.request_id,
      step: data.step,
      code: data.code,
      model: data.model,
      ...(data.status === 'skipped' ? { unapproved: 'skipped' as const } : {})
    });
    if (cell) {
      if (!active?.outputs.live(data.step, cell.outputs)) {
        // This view missed the live messages, or the cell that got them was deleted
        // (this one was made again just now): take the kernel's copy.
        cell.outputs.clear();
        for (const output of data.outputs) {
          cell.outputs.add(output);
        }
      }
      cell.executionCount = data.execution_count;
      cell.executionState = 'idle';
    }
    const changes: Record<string, unknown> = {
      status: data.status,
      error_name: data.error_name
    };
    if (data.answer !== undefined) {
      changes.answer = data.answer;
    }
    if (data.observed !== undefined) {
      changes.observed = data.observed;
    }
    if (cell && cell.sharedModel.getSource() === data.code) {
      // What ran is what the cell shows (approved, maybe edited before approval).
      changes.source_hash = sourceHash(data.code);
    }
    this._edits.updateAction(data.cell_id, data.request_id, data.step, changes);
    if (data.status === 'skipped') {
      this._edits.toRaw(data.cell_id, data.request_id, data.step);
    }
    if (active) {
      active.approvals.delete(data.step);
      active.outputs.close(data.step);
      active.machine.actionEnd(data.step);
    }
    this._changed.emit();
  }

  private _requestEnd(data: IRequestEnd): void {
    const active = this._requests.get(data.request_id);
    const model =
      (data.record && typeof data.record.model === 'string' ? data.record.model : '') ||
      this._modelOf(data.cell_id, data.request_id);
    if (data.answer_cell && active) {
      this._replaceEarlierRun(active);
    }
    if (data.answer_cell) {
      this._edits.upsertAnswer(data.cell_id, data.request_id, model, data.answer_cell);
    }
    this._edits.recordRun(data.cell_id, {
      request_id: data.request_id,
      model,
      status: data.status,
      record: data.record ?? null
    });
    if (active) {
      active.machine.end(data);
      this._ended.add(active.machine.parentMsgId);
      this._finish(active);
    }
    this._changed.emit();
  }

  /** The model named by the request's step cells (request_end without a record). */
  private _modelOf(promptId: string, requestId: string): string {
    for (const info of this._edits.infos()) {
      const record = provenance(info);
      if (record?.prompt_cell_id === promptId && record.request_id === requestId) {
        return record.model;
      }
    }
    return '';
  }

  private _replayQuery(data: IReplayQuery, owner: string): void {
    const verdict = this._replays.take(data.cell_id);
    this._stdin.desk.announce({ owner, prompt: data.prompt, asked: reply => reply(verdict) });
  }

  private _finish(active: IActive): void {
    const machine = active.machine;
    active.unhook();
    this._requests.delete(machine.requestId);
    if (!machine.ended) {
      machine.end(null);
    }
    this._edits.settle(machine.requestId);
    this._changed.emit();
  }

  private _finishAll(): void {
    this._stdin?.clear();
    this._replayOwners.clear();
    this._ended.clear();
    for (const active of [...this._requests.values()]) {
      this._finish(active);
    }
  }
}
