/**
 * Turning an action's IOPub messages into the outputs of its generated cell.
 *
 * The messages belong to the prompt cell's execute request; between `action_start`
 * and `action_end` the controller hands them here instead of to the prompt cell's
 * output area. This mirrors what JupyterLab's OutputArea does with them, including
 * `clear_output(wait=True)` and updates of displays by display id.
 */

import type * as nbformat from '@jupyterlab/nbformat';

/** The part of JupyterLab's IOutputAreaModel used here. */
export interface IOutputList {
  readonly length: number;
  add(output: nbformat.IOutput): number;
  set(index: number, output: nbformat.IOutput): void;
  clear(wait?: boolean): void;
}

/** The part of an IOPub message used here. */
export interface IIOPubMessage {
  header: { msg_type: string };
  content: object;
}

function contentOf(msg: IIOPubMessage): Record<string, unknown> {
  return msg.content as Record<string, unknown>;
}

const OUTPUT_TYPES: ReadonlySet<string> = new Set([
  'stream',
  'display_data',
  'execute_result',
  'error',
  'clear_output',
  'update_display_data'
]);

/** Whether a message is something an output area would show. */
export function isOutputMessage(msg: IIOPubMessage): boolean {
  return OUTPUT_TYPES.has(msg.header.msg_type);
}

/** The nbformat output a message adds, or null for clear/update/other messages. */
export function toOutput(msg: IIOPubMessage): nbformat.IOutput | null {
  const type = msg.header.msg_type;
  const content = contentOf(msg);
  switch (type) {
    case 'stream':
      return { output_type: 'stream', name: content.name, text: content.text } as nbformat.IStream;
    case 'display_data':
      return {
        output_type: 'display_data',
        data: content.data,
        metadata: content.metadata ?? {}
      } as nbformat.IDisplayData;
    case 'execute_result':
      return {
        output_type: 'execute_result',
        data: content.data,
        metadata: content.metadata ?? {},
        execution_count: content.execution_count ?? null
      } as nbformat.IExecuteResult;
    case 'error':
      return {
        output_type: 'error',
        ename: content.ename,
        evalue: content.evalue,
        traceback: content.traceback
      } as nbformat.IError;
    default:
      return null;
  }
}

export function displayId(msg: IIOPubMessage): string | null {
  const transient = contentOf(msg).transient as Record<string, unknown> | undefined;
  const id = transient?.display_id;
  return typeof id === 'string' && id ? id : null;
}

/** Collects one generated cell's outputs, tracking its displays by display id. */
export class OutputCollector {
  private readonly displays = new Map<string, number[]>();
  private clearNext = false;
  /** Whether any message reached this cell live (else the final outputs are used). */
  live = false;

  constructor(readonly list: IOutputList) {}

  /** Apply an output message; false when it is not one (status, comm, ...). */
  apply(msg: IIOPubMessage): boolean {
    const type = msg.header.msg_type;
    if (type === 'clear_output') {
      const wait = contentOf(msg).wait === true;
      this.list.clear(wait);
      if (wait) {
        this.clearNext = true;
      } else {
        this.displays.clear();
      }
      this.live = true;
      return true;
    }
    if (type === 'update_display_data') {
      return this.update(msg);
    }
    const output = toOutput(msg);
    if (output === null) {
      return false;
    }
    if (this.clearNext) {
      this.displays.clear();
      this.clearNext = false;
    }
    this.list.add(output);
    const id = displayId(msg);
    if (id !== null && output.output_type === 'display_data') {
      const indices = this.displays.get(id) ?? [];
      indices.push(this.list.length - 1);
      this.displays.set(id, indices);
    }
    this.live = true;
    return true;
  }

  /** Whether a display with this id lives in this cell. */
  has(id: string): boolean {
    return this.displays.has(id);
  }

  /** Update every output of a display id here; false if none is here. */
  update(msg: IIOPubMessage): boolean {
    const id = displayId(msg);
    const indices = id === null ? undefined : this.displays.get(id);
    if (!indices) {
      return false;
    }
    const content = contentOf(msg);
    const output = {
      output_type: 'display_data',
      data: content.data,
      metadata: content.metadata ?? {}
    } as nbformat.IDisplayData;
    for (const index of indices) {
      if (index < this.list.length) {
        this.list.set(index, output);
      }
    }
    return true;
  }
}

/**
 * The diversion of one request's IOPub messages: between `action_start` and
 * `action_end` of a step its outputs go to the step's cell, and updates of a display
 * an action made go to the cell that shows it, whenever they come.
 */
export class ActionOutputs {
  private readonly _collectors = new Map<number, OutputCollector>();
  private _current: number | null = null;

  /** The window of `step` opens: its outputs go to `list`. */
  open(step: number, list: IOutputList | null): void {
    this._current = step;
    if (list) {
      this._collectors.set(step, new OutputCollector(list));
    }
  }

  close(step: number): void {
    if (this._current === step) {
      this._current = null;
    }
  }

  /**
   * Whether `list` (the step's cell now) got `step`'s outputs live; else the kernel's
   * copy is used. A cell deleted mid-run and made again at `action_end` did not.
   */
  live(step: number, list: IOutputList): boolean {
    const collector = this._collectors.get(step);
    return collector?.live === true && collector.list === list;
  }

  /**
   * Route a message of the prompt cell's request; false when it was diverted (hidden
   * from the prompt cell).
   */
  route(msg: IIOPubMessage): boolean {
    if (!isOutputMessage(msg)) {
      return true;
    }
    try {
      if (msg.header.msg_type === 'update_display_data') {
        for (const collector of this._collectors.values()) {
          if (collector.update(msg)) {
            return false;
          }
        }
        return true;
      }
      if (this._current === null) {
        return true;
      }
      this._collectors.get(this._current)?.apply(msg);
    } catch (reason) {
      // The generated cell was deleted while its action ran.
      console.debug('codeact: dropped an action output', reason);
    }
    return false;
  }
}
