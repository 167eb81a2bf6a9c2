import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  answerIndex,
  answerRecord,
  findAnswer,
  isAnswered,
  promptAfterRun,
  superseded
} from '../src/answers';
import { ICellInfo, IProvenance, sourceHash } from '../src/cells';

function step(id: string, request: string, n: number, source = `step_${n}()`): ICellInfo {
  const record: IProvenance = {
    version: 1,
    prompt_cell_id: 'p',
    request_id: request,
    step: n,
    model: 'm',
    status: 'ok',
    source_hash: sourceHash(source)
  };
  return { id, type: 'code', source, codeact: record };
}

function answer(id: string, request: string): ICellInfo {
  return {
    id,
    type: 'markdown',
    source: 'The chart is above.',
    codeact: { version: 1, role: 'answer', prompt_cell_id: 'p', request_id: request, model: 'm' }
  };
}

const prompt: ICellInfo = { id: 'p', type: 'code', source: 'plot it' };

describe('answer cells', () => {
  it('go after the last step of their request, or below the prompt', () => {
    const cells = [prompt, step('a', 'r1', 1), step('b', 'r1', 2), { id: 'u', type: 'code', source: 'x' }];
    assert.equal(answerIndex(cells, 'p', 'r1'), 3);
    assert.equal(answerIndex(cells, 'p', 'r2'), 1);
    assert.equal(answerIndex(cells, 'gone', 'r1'), null);
  });

  it('are found by request and recognised by role', () => {
    const cells = [prompt, step('a', 'r1', 1), answer('ans', 'r1')];
    assert.equal(findAnswer(cells, 'p', 'r1'), 2);
    assert.equal(findAnswer(cells, 'p', 'r2'), -1);
    assert.equal(answerRecord({ role: 'prompt' }), null);
    assert.equal(answerRecord(null), null);
  });
});

describe('superseded', () => {
  it('lists the earlier runs’ unedited steps and answers, never edited ones or this run', () => {
    const edited = { ...step('e', 'r1', 2), source: 'changed()' };
    const cells = [prompt, step('a', 'r1', 1), edited, answer('ans', 'r1'), step('n', 'r2', 1)];
    assert.deepEqual(superseded(cells, 'p', 'r2').sort(), ['a', 'ans']);
    assert.deepEqual(superseded(cells, 'other', 'r2'), []);
  });
});

describe('promptAfterRun', () => {
  it('keeps the prompt mark and records the run', () => {
    const record = promptAfterRun(
      { version: 1, role: 'prompt' },
      { request_id: 'r2', model: 'm', status: 'ok', record: { version: 1, final: 'done' } }
    );
    assert.deepEqual(record, {
      version: 1,
      role: 'prompt',
      request_id: 'r2',
      model: 'm',
      status: 'ok',
      trajectory: { version: 1, final: 'done' }
    });
  });

  it('drops an earlier run’s record when the new run has none', () => {
    const record = promptAfterRun(
      { version: 1, role: 'prompt', request_id: 'r1', trajectory: { old: true } },
      { request_id: 'r2', model: 'm', status: 'interrupted', record: null }
    );
    assert.equal(record.trajectory, undefined);
    assert.equal(record.request_id, 'r2');
    assert.equal(record.status, 'interrupted');
  });

  it('marks an unmarked cell as a prompt', () => {
    const record = promptAfterRun(undefined, {
      request_id: 'r1',
      model: 'm',
      status: 'error',
      record: null
    });
    assert.equal(record.role, 'prompt');
    assert.equal(isAnswered({ id: 'p', type: 'code', source: 's', codeact: record }), true);
    assert.equal(isAnswered({ id: 'p', type: 'code', source: 's', codeact: { role: 'prompt' } }), false);
  });
});
