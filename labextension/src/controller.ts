/**
 * One notebook document's side of the protocol: the comm, the generated cells, the
 * diversion of action outputs, the kernel's stdin questions and replay offers.
 *
 * There is one controller per document context, shared by every view of it, so each
 * generated cell is inserted once however many views are open; the kernel talks only
 * to the comm of the client that ran the cell, so other browsers (collaboration) see
 * the cells through the shared model.
 */

import type { ISessionContext } from '@jupyterlab/apputils';
import type { Cell, CodeCell, ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type * as nbformat from '@jupyterlab/nbformat';
import type { INotebookModel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import type { PartialJSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  findAction,
  generatedBy,
  ICellInfo,
  insertionIndex,
  IProvenance,
  METADATA_KEY,
  provenance,
  RAISES_EXCEPTION,
  replacement,
  replaySteps,
  shouldReplay,
  sourceHash,
  withTag
} from './cells';
import { isOutputMessage, OutputCollector } from './outputs';
import {
  COMM_TARGET,
  EXTENSION_VERSION,
  IActionEnd,
  IActionStart,
  IApprovalRequest,
  IHello,
  IProgress,
  IReplayOffer,
  IReplayQuery,
  IRequestStart,
  KernelMessage as CodeActMessage,
  parseKernelMessage,
  PROTOCOL_VERSION
} from './protocol';
import { QuestionDesk } from './questions';

/** The kernelspec name and kernel implementation of the codeact kernel. */
const KERNEL_NAME = 'codeact';
const IMPLEMENTATION = 'codeact_kernel';

export type RequestState = 'thinking' | 'running' | 'approval';

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

interface IRequest extends IRequestView {
  parentMsgId: string;
  current: number | null;
  collectors: Map<number, OutputCollector>;
  approvals: Map<number, IApproval>;
  unhook: () => void;
}

type Future = Kernel.IShellFuture<
  KernelMessage.IExecuteRequestMsg,
  KernelMessage.IExecuteReplyMsg
>;

export class NotebookController {
  private readonly _changed = new Signal<this, void>(this);
  private readonly _requests = new Map<string, IRequest>();
  private readonly _desk = new QuestionDesk();
  private readonly _watched = new WeakSet<object>();
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _codeact: boolean | null = null;
  private _unsupported = false;
  private _batch: Set<string> | null = null;
  private readonly _offered = new Set<string>();
  private readonly _verdicts = new Map<string, 'replay' | 'model'>();
  private _disposed = false;

  /**
   * @param context the notebook document.
   * @param cellWidgets the cell widgets of the document's views, for futures.
   */
  constructor(
    readonly context: DocumentRegistry.IContext<INotebookModel>,
    private readonly cellWidgets: (cellId: string) => Cell[]
  ) {
    const session = context.sessionContext;
    session.kernelChanged.connect(this._onKernelChanged, this);
    this._setKernel(session.session?.kernel ?? null);
  }

  /** Emitted when anything the views show changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
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
    this._setKernel(null);
    this.context.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    Signal.clearData(this);
  }

  /** The request running for a prompt cell, if any. */
  request(promptId: string): IRequestView | undefined {
    for (const request of this._requests.values()) {
      if (request.promptId === promptId) {
        return request;
      }
    }
    return undefined;
  }

  /** The approval a generated cell waits for, if any. */
  approval(cell: ICellModel): IApproval | undefined {
    const record = provenance(this._info(cell));
    if (record === null) {
      return undefined;
    }
    return this._requests.get(record.request_id)?.approvals.get(record.step);
  }

  /** Stop: interrupt the kernel, as the toolbar's button does. */
  stop(): void {
    void this.sessionContext.session?.kernel?.interrupt();
  }

  // --- kernel and comm -------------------------------------------------------------

  private _onKernelChanged(
    _: ISessionContext,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._setKernel(change.newValue);
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (this._kernel) {
      this._kernel.statusChanged.disconnect(this._onStatus, this);
    }
    this._finishAll();
    this._kernel = kernel;
    this._comm = null;
    this._unsupported = false;
    this._codeact = null;
    if (!kernel) {
      return;
    }
    kernel.statusChanged.connect(this._onStatus, this);
    if (kernel.name === KERNEL_NAME) {
      this._codeact = true;
    }
    kernel.info
      .then(info => {
        if (this._kernel === kernel) {
          this._codeact = kernel.name === KERNEL_NAME || info.implementation === IMPLEMENTATION;
          this._ensureComm();
        }
      })
      .catch(() => undefined);
    this._ensureComm();
  }

  private _onStatus(kernel: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (kernel !== this._kernel) {
      return;
    }
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      // JupyterLab disposes the comms of a restarted kernel; open a new one later.
      this._comm = null;
      this._finishAll();
    } else if (status === 'idle') {
      this._ensureComm();
    }
  }

  private _ensureComm(): void {
    const kernel = this._kernel;
    if (!kernel || this._codeact !== true || this._unsupported || this._disposed) {
      return;
    }
    if (this._comm && !this._comm.isDisposed) {
      return;
    }
    if (!kernel.handleComms) {
      return;
    }
    try {
      const comm = kernel.createComm(COMM_TARGET);
      comm.onMsg = msg => this._onCommMsg(comm, msg);
      comm.onClose = () => {
        if (this._comm === comm) {
          this._comm = null;
        }
      };
      const hello: IHello = { protocol: PROTOCOL_VERSION, extension: EXTENSION_VERSION };
      comm.open(hello as unknown as KernelMessage.ICommOpenMsg['content']['data']);
      this._comm = comm;
    } catch (reason) {
      console.warn('codeact: could not open the comm', reason);
    }
  }

  private _send(data: IReplayOffer): void {
    this._ensureComm();
    if (this._comm && !this._comm.isDisposed) {
      this._comm.send(data as unknown as KernelMessage.ICommMsgMsg['content']['data']);
    }
  }

  // --- scheduling: replay offers and stdin --------------------------------------------

  /**
   * A code cell of this notebook is about to be executed (NotebookActions'
   * executionScheduled fires just before the execute request is sent).
   */
  onExecutionScheduled(cell: Cell): void {
    if (this._codeact !== true || cell.model.type !== 'code') {
      return;
    }
    if (this._batch === null) {
      // Every cell of one Run All / Run Selected is scheduled in the same task.
      this._batch = new Set();
      queueMicrotask(() => this._closeBatch());
    }
    const id = cell.model.id;
    this._batch.add(id);
    const cells = this._infos();
    if (generatedBy(cells, id).length > 0) {
      // On the shell channel this precedes the execute request, so the kernel has
      // the offer when it starts the cell (docs/protocol.md, "Replay").
      this._send({
        type: 'replay_offer',
        cell_id: id,
        source: cell.model.sharedModel.getSource(),
        outputs: (cell.model as ICodeCellModel).outputs.toJSON(),
        steps: replaySteps(cells, id)
      });
      this._offered.add(id);
    }
    queueMicrotask(() => {
      const future = (cell as CodeCell).outputArea?.future;
      if (future) {
        this._watch(future as Future);
      }
    });
  }

  private _closeBatch(): void {
    const batch = this._batch ?? new Set<string>();
    this._batch = null;
    const cells = this._infos();
    for (const id of this._offered) {
      this._verdicts.set(id, shouldReplay(cells, id, batch) ? 'replay' : 'model');
    }
    this._offered.clear();
  }

  /** Answer the kernel's announced stdin questions for this execution. */
  private _watch(future: Future): void {
    if (this._watched.has(future) || future.isDisposed) {
      return;
    }
    this._watched.add(future);
    const kernel = this._kernel;
    const original = future.onStdin;
    future.onStdin = msg => {
      if (!kernel || !KernelMessage.isInputRequestMsg(msg)) {
        return original(msg);
      }
      this._desk.request(
        msg.parent_header.msg_id,
        msg.content.prompt,
        value => kernel.sendInputReply({ status: 'ok', value }, msg.header),
        () => void original(msg)
      );
    };
    future.done
      .catch(() => undefined)
      .then(() => {
        this._desk.clear(future.msg.header.msg_id);
        for (const request of [...this._requests.values()]) {
          if (request.parentMsgId === future.msg.header.msg_id) {
            this._finish(request);
          }
        }
      });
  }

  // --- messages from the kernel -------------------------------------------------------

  private _onCommMsg(comm: Kernel.IComm, msg: KernelMessage.ICommMsgMsg): void {
    const data = parseKernelMessage(msg.content.data);
    if (data === null) {
      return;
    }
    const parentMsgId = String((msg.parent_header as { msg_id?: string }).msg_id ?? '');
    try {
      this._dispatch(comm, data, parentMsgId);
    } catch (reason) {
      console.error('codeact: could not handle', data.type, reason);
    }
  }

  private _dispatch(comm: Kernel.IComm, data: CodeActMessage, parentMsgId: string): void {
    switch (data.type) {
      case 'welcome':
        return;
      case 'unsupported':
        console.warn(
          `codeact: the kernel does not speak protocol ${PROTOCOL_VERSION} of this ` +
            `extension (it speaks ${data.supported.join(', ')}); generated cells are ` +
            'rendered inline. Install matching versions of codeact-kernel.'
        );
        this._unsupported = true;
        if (this._comm === comm) {
          this._comm = null;
        }
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
      case 'request_end': {
        const request = this._requests.get(data.request_id);
        if (request) {
          this._finish(request);
        }
        return;
      }
      case 'replay_query':
        return this._replayQuery(data, parentMsgId);
    }
  }

  private _requestStart(data: IRequestStart, parentMsgId: string): void {
    const model = this.context.model;
    const { remove } = replacement(this._infos(), data.cell_id, data.request_id);
    if (remove.length) {
      const doomed = new Set(remove);
      model.sharedModel.transact(() => {
        for (let i = model.cells.length - 1; i >= 0; i--) {
          if (doomed.has(model.cells.get(i).id)) {
            model.sharedModel.deleteCell(i);
          }
        }
      });
    }
    this._track(data.request_id, data.cell_id, parentMsgId);
    this._changed.emit();
  }

  /** The state of a request, created on its first message (a view may miss some). */
  private _track(requestId: string, promptId: string, parentMsgId: string): IRequest {
    const known = this._requests.get(requestId);
    if (known) {
      return known;
    }
    const request: IRequest = {
      requestId,
      promptId,
      parentMsgId,
      step: 0,
      tokens: 0,
      estimated: false,
      started: Date.now(),
      state: 'thinking',
      message: '',
      current: null,
      collectors: new Map(),
      approvals: new Map(),
      unhook: () => undefined
    };
    this._requests.set(requestId, request);
    const kernel = this._kernel;
    if (kernel && parentMsgId) {
      const hook = (msg: KernelMessage.IIOPubMessage): boolean => this._divert(request, msg);
      kernel.registerMessageHook(parentMsgId, hook);
      request.unhook = () => {
        if (!kernel.isDisposed) {
          kernel.removeMessageHook(parentMsgId, hook);
        }
      };
    }
    for (const widget of this.cellWidgets(promptId)) {
      const future = (widget as CodeCell).outputArea?.future;
      if (future && future.msg.header.msg_id === parentMsgId) {
        this._watch(future as Future);
      }
    }
    return request;
  }

  /**
   * The message hook on the prompt cell's request: outputs inside an action's window
   * go to the generated cell (returning false hides them from the prompt cell).
   */
  private _divert(request: IRequest, msg: KernelMessage.IIOPubMessage): boolean {
    if (!isOutputMessage(msg)) {
      return true;
    }
    try {
      if (msg.header.msg_type === 'update_display_data') {
        for (const collector of request.collectors.values()) {
          if (collector.update(msg)) {
            return false;
          }
        }
        return true;
      }
      if (request.current === null) {
        return true;
      }
      const collector = request.collectors.get(request.current);
      if (collector) {
        collector.apply(msg);
      }
    } catch (reason) {
      // The generated cell was deleted while its action ran.
      console.debug('codeact: dropped an action output', reason);
    }
    return false;
  }

  private _progress(data: IProgress): void {
    const request = this._requests.get(data.request_id);
    if (!request) {
      return;
    }
    request.step = data.step;
    if (typeof data.tokens === 'number') {
      request.tokens = data.tokens;
      request.estimated = data.estimated === true;
    }
    if (data.state === 'thinking') {
      request.state = 'thinking';
      request.message = data.message ?? '';
    }
    this._changed.emit();
  }

  private _actionStart(data: IActionStart, parentMsgId: string): void {
    const request = this._track(data.request_id, data.cell_id, parentMsgId);
    const cell = this._upsert(data.cell_id, data.request_id, data.step, data.code, data.model);
    request.step = data.step;
    request.state = 'running';
    request.message = '';
    request.current = data.step;
    if (cell) {
      request.collectors.set(data.step, new OutputCollector(cell.outputs));
    }
    this._changed.emit();
  }

  private _approvalRequest(data: IApprovalRequest, owner: string): void {
    const request = this._requests.get(data.request_id);
    if (!request) {
      return;
    }
    request.state = 'approval';
    this._setStatus(data.cell_id, data.request_id, data.step, 'pending');
    this._desk.announce({
      owner,
      prompt: data.prompt,
      asked: reply => {
        const answer = (value: string): void => {
          if (!request.approvals.delete(data.step)) {
            return;
          }
          reply(value);
          request.state = 'running';
          this._setStatus(data.cell_id, data.request_id, data.step, 'running');
          this._changed.emit();
        };
        request.approvals.set(data.step, {
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
    const request = this._requests.get(data.request_id);
    const cell = this._upsert(data.cell_id, data.request_id, data.step, data.code, data.model);
    if (cell) {
      if (!request?.collectors.get(data.step)?.live) {
        // This view missed the live messages: take the kernel's copy.
        cell.outputs.clear();
        for (const output of data.outputs) {
          cell.outputs.add(output);
        }
      }
      cell.executionCount = data.execution_count;
      cell.executionState = 'idle';
    }
    this._setStatus(data.cell_id, data.request_id, data.step, data.status, data.error_name);
    if (data.status === 'skipped') {
      this._toRaw(data.cell_id, data.request_id, data.step);
    }
    if (request) {
      request.approvals.delete(data.step);
      request.current = null;
      request.state = 'thinking';
    }
    this._changed.emit();
  }

  private _replayQuery(data: IReplayQuery, owner: string): void {
    const verdict = this._verdicts.get(data.cell_id) ?? 'model';
    this._verdicts.delete(data.cell_id);
    this._desk.announce({ owner, prompt: data.prompt, asked: reply => reply(verdict) });
  }

  private _finish(request: IRequest): void {
    request.unhook();
    this._requests.delete(request.requestId);
    const model = this.context.model;
    for (let i = 0; i < model.cells.length; i++) {
      const record = provenance(this._info(model.cells.get(i)));
      if (
        record?.request_id === request.requestId &&
        (record.status === 'running' || record.status === 'pending')
      ) {
        this._setStatus(record.prompt_cell_id, record.request_id, record.step, 'interrupted');
        const cell = model.cells.get(i);
        if (cell.type === 'code') {
          (cell as ICodeCellModel).executionState = 'idle';
        }
      }
    }
    this._changed.emit();
  }

  private _finishAll(): void {
    this._desk.clear();
    for (const request of [...this._requests.values()]) {
      this._finish(request);
    }
  }

  // --- the notebook model -------------------------------------------------------------

  private _info(cell: ICellModel): ICellInfo {
    return {
      id: cell.id,
      type: cell.type,
      source: cell.sharedModel.getSource(),
      codeact: cell.getMetadata(METADATA_KEY)
    };
  }

  private _infos(): ICellInfo[] {
    const cells = this.context.model.cells;
    const infos: ICellInfo[] = [];
    for (let i = 0; i < cells.length; i++) {
      infos.push(this._info(cells.get(i)));
    }
    return infos;
  }

  /** Insert the cell of an action, or find it when another message already did. */
  private _upsert(
    promptId: string,
    requestId: string,
    step: number,
    code: string,
    model: string
  ): ICodeCellModel | null {
    const notebook = this.context.model;
    let index = findAction(this._infos(), promptId, requestId, step);
    if (index < 0) {
      const at = insertionIndex(this._infos(), promptId, requestId, step);
      if (at === null) {
        return null;
      }
      const record: IProvenance = {
        version: 1,
        prompt_cell_id: promptId,
        request_id: requestId,
        step,
        model,
        status: 'running',
        source_hash: sourceHash(code)
      };
      const cell: nbformat.ICodeCell = {
        cell_type: 'code',
        source: code,
        metadata: { [METADATA_KEY]: record as unknown as PartialJSONObject },
        outputs: [],
        execution_count: null
      };
      notebook.sharedModel.insertCell(at, cell);
      index = at;
    }
    const cell = notebook.cells.get(index);
    if (cell.type !== 'code') {
      return null;
    }
    const code_cell = cell as ICodeCellModel;
    code_cell.trusted = true;
    const record = provenance(this._info(cell));
    if (record && (record.status === 'running' || record.status === 'pending')) {
      code_cell.executionState = 'running';
    }
    return code_cell;
  }

  private _setStatus(
    promptId: string,
    requestId: string,
    step: number,
    status: IProvenance['status'],
    errorName?: string | null
  ): void {
    const index = findAction(this._infos(), promptId, requestId, step);
    if (index < 0) {
      return;
    }
    const cell = this.context.model.cells.get(index);
    const record = provenance(this._info(cell));
    if (record === null) {
      return;
    }
    const updated: IProvenance = { ...record, status };
    if (errorName) {
      updated.error_name = errorName;
    } else {
      delete updated.error_name;
    }
    cell.setMetadata(METADATA_KEY, updated as unknown as PartialJSONObject);
    if (status === 'error') {
      cell.setMetadata('tags', withTag(cell.getMetadata('tags'), RAISES_EXCEPTION));
    }
  }

  /** A declined action stays visible but cannot run: it becomes a raw cell. */
  private _toRaw(promptId: string, requestId: string, step: number): void {
    const notebook = this.context.model;
    const index = findAction(this._infos(), promptId, requestId, step);
    if (index < 0) {
      return;
    }
    const cell = notebook.cells.get(index);
    if (cell.type === 'raw') {
      return;
    }
    const raw: nbformat.IRawCell = {
      cell_type: 'raw',
      source: cell.sharedModel.getSource(),
      metadata: { [METADATA_KEY]: cell.getMetadata(METADATA_KEY) }
    };
    notebook.sharedModel.transact(() => {
      notebook.sharedModel.deleteCell(index);
      notebook.sharedModel.insertCell(index, raw);
    });
  }
}
