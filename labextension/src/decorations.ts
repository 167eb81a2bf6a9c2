/**
 * What a notebook view shows on top of the model:
 *
 * - on a prompt cell: a header with the "Prompt" badge and a control that folds its
 *   steps; its editor shows prose (wrapped, no Python highlighting);
 * - on each generated cell: a header ("CodeAct · run 2 · step 1", its status, what fixed
 *   it, Run / Skip while it awaits approval, Stop while it runs, a toggle that folds its
 *   code and outputs);
 * - on a prompt cell whose request runs: a progress line with a Stop button.
 *
 * The widgets are in headers.ts; this module decides where they go and what they show.
 * Only two things reach the saved file from here: the prompt mark (`metadata.codeact`,
 * from the kernel's `classify` answer) and JupyterLab's own hidden-input/-output state
 * when a step is folded. Everything else lives in the cells themselves.
 */

import type { Cell, CodeCell, ICellModel } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { PartialJSONObject } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';
import type { PanelLayout } from '@lumino/widgets';

import { answerRecord } from './answers';
import { ICellInfo, IProvenance, isEdited, METADATA_KEY, provenance } from './cells';
import type { IApproval, IRequestView } from './controller';
import { fold, GeneratedHeader, isFolded, PromptHeader, PromptProgress } from './headers';
import { marking, PromptClassifier, promptRecord } from './prompts';
import type { IClassified } from './protocol';
import { IStepView, stepViews } from './runs';

const GENERATED_CLASS = 'codeact-generated';
const PROMPT_CLASS = 'codeact-prompt';
const EARLIER_RUN_CLASS = 'codeact-earlier-run';
const ANSWER_CLASS = 'codeact-answer';
/** On a cell whose action awaits approval, and on its notebook while it is active. */
export const APPROVAL_CLASS = 'codeact-mod-approval';
/** The editor language of a prompt: prose, with Markdown's light touch. */
const PROMPT_MIMETYPE = 'text/x-ipythongfm';

/** What the decorations need of a document's controller. */
export interface IDecoratedController {
  readonly changed: ISignal<unknown, void>;
  readonly classified: ISignal<unknown, IClassified>;
  request(promptId: string): IRequestView | undefined;
  approval(cell: ICellModel): IApproval | undefined;
  stop(): void;
  /** Ask the kernel whether `source` is a prompt; false when it cannot be asked now. */
  classify(cellId: string, source: string): boolean;
}

/** Keeps one notebook view's decorations in step with its model and controller. */
export class Decorator {
  private readonly _headers = new WeakMap<Cell, GeneratedHeader>();
  private readonly _promptHeaders = new WeakMap<Cell, PromptHeader>();
  private readonly _progress = new WeakMap<Cell, PromptProgress>();
  private readonly _waiting = new WeakSet<Cell>();
  /** Cells this view turned into prompt editors (to turn back when they become code). */
  private readonly _prompts = new WeakSet<Cell>();
  private readonly _classifier: PromptClassifier;
  /** Cells the notebook had when it opened: their saved folding is the user's. */
  private _initial: Set<string> | null = null;
  /** Failed steps folded once a later step fixed them (the user may unfold them). */
  private readonly _folded = new Set<string>();
  private _frame = 0;
  private _timer = 0;
  private _disposed = false;

  constructor(
    private readonly panel: NotebookPanel,
    private readonly controller: IDecoratedController
  ) {
    this._classifier = new PromptClassifier({
      send: (cellId, source) => controller.classify(cellId, source)
    });
    controller.changed.connect(this.schedule, this);
    controller.classified.connect(this._onClassified, this);
    panel.context.model.contentChanged.connect(this.schedule, this);
    panel.content.modelContentChanged.connect(this.schedule, this);
    panel.content.activeCellChanged.connect(this.schedule, this);
    void panel.context.ready.then(() => {
      const cells = panel.context.model.cells;
      this._initial = new Set(Array.from({ length: cells.length }, (_, i) => cells.get(i).id));
      this.schedule();
    });
    this.schedule();
  }

  dispose(): void {
    this._disposed = true;
    cancelAnimationFrame(this._frame);
    clearInterval(this._timer);
    this._classifier.dispose();
    this.controller.changed.disconnect(this.schedule, this);
    this.controller.classified.disconnect(this._onClassified, this);
    this.panel.context.model.contentChanged.disconnect(this.schedule, this);
    this.panel.content.modelContentChanged.disconnect(this.schedule, this);
    this.panel.content.activeCellChanged.disconnect(this.schedule, this);
  }

  schedule(): void {
    if (this._disposed || this._frame) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.refresh();
    });
  }

  refresh(): void {
    if (this._disposed || this.panel.isDisposed) {
      return;
    }
    const widgets = this.panel.content.widgets;
    const infos = widgets.map(cell => info(cell.model));
    const views = this._stepViews(infos);
    // Each prompt's step cells, found in one pass; and every other code cell, rendered
    // or not (a long notebook renders lazily), is asked about once its text settles.
    const steps = new Map<string, Cell[]>();
    widgets.forEach((cell, index) => {
      const promptId = provenance(infos[index])?.prompt_cell_id;
      if (promptId === undefined && infos[index].type === 'code') {
        this._classifier.observe(infos[index].id, infos[index].source);
      } else if (promptId !== undefined) {
        const list = steps.get(promptId);
        if (list) {
          list.push(cell);
        } else {
          steps.set(promptId, [cell]);
        }
      }
    });
    let running = false;
    widgets.forEach((cell, index) => {
      if (cell.isPlaceholder()) {
        if (!this._waiting.has(cell)) {
          this._waiting.add(cell);
          void cell.ready.then(() => this.schedule());
        }
        return;
      }
      const record = provenance(infos[index]);
      // The final answer's cell closes its run: it shares the steps' edge.
      cell.toggleClass(ANSWER_CLASS, answerRecord(infos[index].codeact) !== null);
      this._header(cell, infos[index], record, views.get(index));
      this._prompt(cell, infos[index], record !== null, steps.get(cell.model.id) ?? []);
      running = this._progressOf(cell) || running;
    });
    const active = this.panel.content.activeCell;
    this.panel.content.toggleClass(
      APPROVAL_CLASS,
      !!active && this.controller.approval(active.model) !== undefined
    );
    // Elapsed seconds tick while a request runs.
    if (running && !this._timer) {
      this._timer = window.setInterval(() => this.schedule(), 1000);
    } else if (!running && this._timer) {
      clearInterval(this._timer);
      this._timer = 0;
    }
  }

  /** The step views of every prompt's generated cells, by cell index. */
  private _stepViews(infos: ICellInfo[]): Map<number, IStepView> {
    const prompts = new Set<string>();
    for (const cell of infos) {
      const record = provenance(cell);
      if (record) {
        prompts.add(record.prompt_cell_id);
      }
    }
    const views = new Map<number, IStepView>();
    for (const promptId of prompts) {
      const prompt = infos.find(cell => cell.id === promptId);
      const latest =
        this.controller.request(promptId)?.requestId ??
        promptRecord(prompt?.codeact)?.request_id;
      for (const [index, view] of stepViews(infos, promptId, latest)) {
        views.set(index, view);
      }
    }
    return views;
  }

  private _header(
    cell: Cell,
    cellInfo: ICellInfo,
    record: IProvenance | null,
    view: IStepView | undefined
  ): void {
    let header = this._headers.get(cell);
    if (record === null) {
      if (header) {
        header.dispose();
        this._headers.delete(cell);
        cell.removeClass(GENERATED_CLASS);
        cell.removeClass(EARLIER_RUN_CLASS);
        cell.removeClass(APPROVAL_CLASS);
        delete cell.node.dataset.codeactStatus;
      }
      return;
    }
    if (!header || header.isDisposed) {
      header = new GeneratedHeader(cell, () => this.controller.stop());
      (cell.layout as PanelLayout).insertWidget(0, header);
      this._headers.set(cell, header);
      cell.addClass(GENERATED_CLASS);
    }
    cell.node.dataset.codeactStatus = record.status;
    // An action kept as a raw cell (awaiting approval, skipped) still reads as Python.
    const python = this.panel.content.codeMimetype;
    if (cell.model.type === 'raw' && cell.model.mimeType !== python) {
      cell.model.mimeType = python;
    }
    cell.toggleClass(EARLIER_RUN_CLASS, !!view && view.run < view.runs);
    const approval = this.controller.approval(cell.model);
    cell.toggleClass(APPROVAL_CLASS, approval !== undefined);
    this._foldFixed(cell, record, view);
    header.render({
      record,
      view,
      edited: isEdited(cellInfo),
      approval,
      running: this.controller.request(record.prompt_cell_id) !== undefined
    });
  }

  /**
   * A failed attempt that a later step of the same run fixed is folded, once: the
   * run then reads as what worked. Not in a notebook as it was opened, whose folding
   * is what its user saved.
   */
  private _foldFixed(cell: Cell, record: IProvenance, view: IStepView | undefined): void {
    if (!view?.fixedBy || this._initial === null || this._initial.has(cell.model.id)) {
      return;
    }
    const key = `${record.request_id}/${record.step}`;
    if (this._folded.has(key)) {
      return;
    }
    this._folded.add(key);
    fold(cell, true);
  }

  /** A code cell the kernel calls prose looks like a prompt, with a badge. */
  private _prompt(cell: Cell, cellInfo: ICellInfo, generated: boolean, steps: Cell[]): void {
    if (cellInfo.type !== 'code' || generated) {
      this._unprompt(cell);
      return;
    }
    const kind = this._classifier.kind(cellInfo.id);
    const isPrompt =
      this.controller.request(cellInfo.id) !== undefined ||
      (kind !== undefined ? kind === 'natural_language' : promptRecord(cellInfo.codeact) !== null);
    if (!isPrompt) {
      this._unprompt(cell);
      return;
    }
    const code = cell as CodeCell;
    this._prompts.add(cell);
    cell.addClass(PROMPT_CLASS);
    if (code.model.mimeType !== PROMPT_MIMETYPE) {
      code.model.mimeType = PROMPT_MIMETYPE;
    }
    // The notebook's settings reset editor options now and then: set it again.
    if (code.editor && code.editor.getOption('lineWrap') !== true) {
      code.editor.setOption('lineWrap', true);
    }
    let header = this._promptHeaders.get(cell);
    if (!header || header.isDisposed) {
      const made = new PromptHeader(folded => this._foldSteps(cellInfo.id, folded));
      (cell.layout as PanelLayout).insertWidget(0, made);
      this._promptHeaders.set(cell, made);
      header = made;
    }
    const record = promptRecord(cellInfo.codeact);
    header.render({
      steps: steps.length,
      folded: steps.length > 0 && steps.every(isFolded),
      model: this.controller.request(cellInfo.id) ? '' : (record?.model ?? '')
    });
  }

  private _unprompt(cell: Cell): void {
    const header = this._promptHeaders.get(cell);
    if (header) {
      header.dispose();
      this._promptHeaders.delete(cell);
    }
    if (!this._prompts.has(cell)) {
      return;
    }
    this._prompts.delete(cell);
    cell.removeClass(PROMPT_CLASS);
    if (cell.model.type === 'code') {
      const code = cell as CodeCell;
      code.model.mimeType = this.panel.content.codeMimetype;
      code.editor?.setOption('lineWrap', code.editorConfig.lineWrap ?? false);
    }
  }

  private _foldSteps(promptId: string, folded: boolean): void {
    for (const cell of this.panel.content.widgets) {
      if (provenance(info(cell.model))?.prompt_cell_id === promptId) {
        fold(cell, folded);
      }
    }
    this.schedule();
  }

  private _onClassified(_: unknown, answer: IClassified): void {
    const cells = this.panel.context.model.cells;
    let model: ICellModel | null = null;
    for (let i = 0; i < cells.length; i++) {
      if (cells.get(i).id === answer.cell_id) {
        model = cells.get(i);
        break;
      }
    }
    const current = model?.type === 'code' ? model.sharedModel.getSource() : null;
    const kind = this._classifier.receive(answer, current);
    if (model && kind) {
      const change = marking(model.getMetadata(METADATA_KEY), kind);
      if (change === 'delete') {
        model.deleteMetadata(METADATA_KEY);
      } else if (change !== 'keep') {
        model.setMetadata(METADATA_KEY, change.set as unknown as PartialJSONObject);
      }
    }
    this.schedule();
  }

  private _progressOf(cell: Cell): boolean {
    const request = cell.model.type === 'code' ? this.controller.request(cell.model.id) : undefined;
    let progress = this._progress.get(cell);
    if (!request) {
      if (progress) {
        progress.dispose();
        this._progress.delete(cell);
      }
      return false;
    }
    if (!progress || progress.isDisposed) {
      progress = new PromptProgress(() => this.controller.stop());
      const layout = cell.layout as PanelLayout;
      const outputs = (cell as CodeCell).outputArea?.parent;
      const index = outputs ? layout.widgets.indexOf(outputs) : -1;
      layout.insertWidget(index >= 0 ? index : layout.widgets.length, progress);
      this._progress.set(cell, progress);
    }
    progress.render(request);
    return true;
  }
}

function info(model: ICellModel): ICellInfo {
  return {
    id: model.id,
    type: model.type,
    source: model.sharedModel.getSource(),
    codeact: model.getMetadata(METADATA_KEY)
  };
}
