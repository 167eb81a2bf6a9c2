import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { sourceHash } from '../src/cells';
import { marking, promptRecord, PromptClassifier } from '../src/prompts';
import { parseKernelMessage } from '../src/protocol';

describe('marking', () => {
  it('marks an unmarked prose cell as a prompt', () => {
    assert.deepEqual(marking(undefined, 'natural_language'), {
      set: { version: 1, role: 'prompt' }
    });
  });

  it('leaves a marked prompt and a generated cell alone', () => {
    assert.equal(marking({ version: 1, role: 'prompt' }, 'natural_language'), 'keep');
    const generated = { version: 1, prompt_cell_id: 'p', request_id: 'r', step: 1 };
    assert.equal(marking(generated, 'natural_language'), 'keep');
    assert.equal(marking(generated, 'code'), 'keep');
  });

  it('unmarks a bare prompt typed back into code, never a run record', () => {
    assert.equal(marking({ version: 1, role: 'prompt' }, 'code'), 'delete');
    assert.equal(marking({ version: 1, role: 'prompt', request_id: 'r' }, 'code'), 'keep');
    assert.equal(marking(undefined, 'code'), 'keep');
  });

  it('reads prompt records', () => {
    assert.deepEqual(promptRecord({ version: 1, role: 'prompt' }), { version: 1, role: 'prompt' });
    assert.equal(promptRecord({ role: 'answer' }), null);
    assert.equal(promptRecord(['prompt']), null);
    assert.equal(promptRecord(null), null);
  });
});

describe('PromptClassifier', () => {
  const wait = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

  it('asks once, after the user stops typing, about the last source', async () => {
    const sent: [string, string][] = [];
    const classifier = new PromptClassifier({
      send: (id, source) => (sent.push([id, source]), true),
      delay: 20
    });
    classifier.observe('c', 'plot');
    classifier.observe('c', 'plot the');
    classifier.observe('c', 'plot the data');
    await wait(50);
    classifier.observe('c', 'plot the data');
    await wait(50);
    assert.deepEqual(sent, [['c', 'plot the data']]);
    classifier.dispose();
  });

  it('keeps answers about the current source and drops stale ones', () => {
    const classifier = new PromptClassifier({ send: () => true, delay: 0 });
    const answer = {
      cell_id: 'c',
      source_hash: sourceHash('plot it'),
      kind: 'natural_language' as const
    };
    assert.equal(classifier.receive(answer, 'plot it now'), null);
    assert.equal(classifier.kind('c'), undefined);
    assert.equal(classifier.receive(answer, null), null);
    assert.equal(classifier.receive(answer, 'plot it'), 'natural_language');
    assert.equal(classifier.kind('c'), 'natural_language');
    classifier.dispose();
  });

  it('does not ask again about a source it knows, nor about huge sources', async () => {
    const sent: string[] = [];
    const classifier = new PromptClassifier({
      send: (_, source) => (sent.push(source), true),
      delay: 5,
      maxLength: 10
    });
    classifier.receive({ cell_id: 'c', source_hash: sourceHash('x = 1'), kind: 'code' }, 'x = 1');
    classifier.observe('c', 'x = 1');
    classifier.observe('d', 'a very long pasted source');
    await wait(30);
    assert.deepEqual(sent, []);
    classifier.dispose();
  });

  it('asks again when there was no comm, or no answer for a while', async () => {
    let now = 0;
    let connected = false;
    const sent: string[] = [];
    const classifier = new PromptClassifier({
      send: (_, source) => connected && (sent.push(source), true),
      delay: 5,
      retry: 1000,
      now: () => now
    });
    classifier.observe('c', 'hello there');
    await wait(20);
    assert.deepEqual(sent, []);
    connected = true;
    classifier.observe('c', 'hello there');
    await wait(20);
    classifier.observe('c', 'hello there');
    await wait(20);
    assert.deepEqual(sent, ['hello there']);
    now = 2000;
    classifier.observe('c', 'hello there');
    await wait(20);
    assert.deepEqual(sent, ['hello there', 'hello there']);
    classifier.dispose();
  });
});

describe('the classified message', () => {
  it('is parsed when well formed, and dropped otherwise', () => {
    const answer = { type: 'classified', cell_id: 'c', source_hash: 'fnv1a32:0', kind: 'code' };
    assert.deepEqual(parseKernelMessage(answer), answer);
    assert.equal(parseKernelMessage({ ...answer, kind: 'prose' }), null);
    assert.equal(parseKernelMessage({ ...answer, source_hash: 3 }), null);
    assert.equal(parseKernelMessage({ type: 'classified', kind: 'code' }), null);
  });
});
