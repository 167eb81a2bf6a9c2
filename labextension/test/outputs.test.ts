import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type * as nbformat from '@jupyterlab/nbformat';

import {
  ActionOutputs,
  IIOPubMessage,
  IOutputList,
  isOutputMessage,
  OutputCollector,
  toOutput
} from '../src/outputs';

/** A stand-in for JupyterLab's OutputAreaModel: merges streams, clears with wait. */
class List implements IOutputList {
  items: nbformat.IOutput[] = [];
  private clearNext = false;

  get length(): number {
    return this.items.length;
  }

  add(output: nbformat.IOutput): number {
    if (this.clearNext) {
      this.items = [];
      this.clearNext = false;
    }
    const last = this.items[this.items.length - 1];
    if (
      output.output_type === 'stream' &&
      last?.output_type === 'stream' &&
      last.name === output.name
    ) {
      last.text = String(last.text) + String(output.text);
    } else {
      this.items.push({ ...output });
    }
    return this.items.length;
  }

  set(index: number, output: nbformat.IOutput): void {
    this.items[index] = output;
  }

  clear(wait = false): void {
    if (wait) {
      this.clearNext = true;
    } else {
      this.items = [];
    }
  }
}

function msg(type: string, content: Record<string, unknown>): IIOPubMessage {
  return { header: { msg_type: type }, content };
}

describe('toOutput', () => {
  it('turns each output message into its nbformat output', () => {
    assert.deepEqual(toOutput(msg('stream', { name: 'stdout', text: 'hi\n' })), {
      output_type: 'stream',
      name: 'stdout',
      text: 'hi\n'
    });
    assert.deepEqual(
      toOutput(msg('execute_result', { data: { 'text/plain': '2' }, execution_count: 4 })),
      { output_type: 'execute_result', data: { 'text/plain': '2' }, metadata: {}, execution_count: 4 }
    );
    assert.deepEqual(
      toOutput(msg('error', { ename: 'E', evalue: 'v', traceback: ['t'] })),
      { output_type: 'error', ename: 'E', evalue: 'v', traceback: ['t'] }
    );
    assert.deepEqual(
      toOutput(
        msg('display_data', {
          data: { 'image/png': 'iVBOR' },
          metadata: { width: 3 },
          transient: { display_id: 'd' }
        })
      ),
      { output_type: 'display_data', data: { 'image/png': 'iVBOR' }, metadata: { width: 3 } }
    );
    assert.equal(toOutput(msg('status', { execution_state: 'idle' })), null);
    assert.equal(toOutput(msg('clear_output', { wait: false })), null);
  });

  it('knows which messages are outputs', () => {
    for (const type of ['stream', 'display_data', 'execute_result', 'error', 'clear_output']) {
      assert.equal(isOutputMessage(msg(type, {})), true, type);
    }
    for (const type of ['status', 'execute_input', 'comm_msg', 'comm_open']) {
      assert.equal(isOutputMessage(msg(type, {})), false, type);
    }
  });
});

describe('OutputCollector', () => {
  it('collects what an output area would show', () => {
    const list = new List();
    const collector = new OutputCollector(list);
    assert.equal(collector.live, false);
    assert.equal(collector.apply(msg('status', { execution_state: 'busy' })), false);
    collector.apply(msg('stream', { name: 'stdout', text: 'a' }));
    collector.apply(msg('stream', { name: 'stdout', text: 'b\n' }));
    collector.apply(msg('execute_result', { data: { 'text/plain': '3' }, execution_count: 9 }));
    assert.equal(collector.live, true);
    assert.deepEqual(list.items, [
      { output_type: 'stream', name: 'stdout', text: 'ab\n' },
      { output_type: 'execute_result', data: { 'text/plain': '3' }, metadata: {}, execution_count: 9 }
    ]);
  });

  it('clears now, or with wait at the next output', () => {
    const list = new List();
    const collector = new OutputCollector(list);
    collector.apply(msg('stream', { name: 'stdout', text: '1' }));
    collector.apply(msg('clear_output', { wait: true }));
    assert.equal(list.length, 1);
    collector.apply(msg('stream', { name: 'stdout', text: '2' }));
    assert.deepEqual(list.items, [{ output_type: 'stream', name: 'stdout', text: '2' }]);
    collector.apply(msg('clear_output', { wait: false }));
    assert.equal(list.length, 0);
  });

  it('updates its displays by display id, and only its own', () => {
    const list = new List();
    const collector = new OutputCollector(list);
    const shown = (text: string): Record<string, unknown> => ({
      data: { 'text/plain': text },
      metadata: {},
      transient: { display_id: 'progress' }
    });
    collector.apply(msg('display_data', shown('0%')));
    collector.apply(msg('stream', { name: 'stdout', text: 'working\n' }));
    assert.equal(collector.has('progress'), true);
    assert.equal(collector.apply(msg('update_display_data', shown('100%'))), true);
    assert.deepEqual(list.items[0], {
      output_type: 'display_data',
      data: { 'text/plain': '100%' },
      metadata: {}
    });
    const other = { data: { 'text/plain': 'x' }, transient: { display_id: 'narrative' } };
    assert.equal(collector.update(msg('update_display_data', other)), false);
    collector.apply(msg('clear_output', {}));
    assert.equal(collector.has('progress'), false);
  });
});

describe('ActionOutputs', () => {
  it('is live only in the cell that got the outputs', () => {
    const outputs = new ActionOutputs();
    const cell = new List();
    outputs.open(1, cell);
    assert.equal(outputs.route(msg('stream', { name: 'stdout', text: 'chart\n' })), false);
    outputs.close(1);
    assert.equal(outputs.live(1, cell), true);
    // The user deleted the step cell mid-run; action_end makes it again, empty: it
    // must take the kernel's copy of the outputs instead of staying blank.
    assert.equal(outputs.live(1, new List()), false);
    assert.equal(outputs.live(2, cell), false);
  });
});
