import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ICellInfo, IProvenance, sourceHash } from '../src/cells';
import { stepLabel, stepViews } from '../src/runs';

function step(
  id: string,
  request: string,
  n: number,
  status: IProvenance['status'] = 'ok',
  prompt = 'p'
): ICellInfo {
  const source = `step_${n}()`;
  const record: IProvenance = {
    version: 1,
    prompt_cell_id: prompt,
    request_id: request,
    step: n,
    model: 'openai:m',
    status,
    source_hash: sourceHash(source)
  };
  return { id, type: 'code', source, codeact: record };
}

const prompt: ICellInfo = { id: 'p', type: 'code', source: 'plot it' };

describe('stepViews', () => {
  it('one run: no run numbers, a failed step fixed by the next good one', () => {
    const cells = [
      prompt,
      step('a', 'r1', 1),
      step('b', 'r1', 2, 'error'),
      step('c', 'r1', 3, 'error'),
      step('d', 'r1', 4)
    ];
    const views = stepViews(cells, 'p');
    assert.deepEqual([...views.keys()], [1, 2, 3, 4]);
    assert.equal(views.get(1)!.runs, 1);
    assert.equal(views.get(1)!.fixedBy, null);
    assert.equal(views.get(2)!.fixedBy, 4);
    assert.equal(views.get(3)!.fixedBy, 4);
    assert.equal(stepLabel(2, views.get(2)), 'step 2');
  });

  it('a failure nothing fixed stays unfixed, and other runs do not fix it', () => {
    const cells = [prompt, step('a', 'r2', 1), step('b', 'r1', 1, 'error')];
    assert.equal(stepViews(cells, 'p').get(2)!.fixedBy, null);
    const lone = [prompt, step('a', 'r1', 1), step('b', 'r1', 2, 'error')];
    assert.equal(stepViews(lone, 'p').get(2)!.fixedBy, null);
  });

  it('numbers runs oldest first: kept cells below the new run are older', () => {
    const cells = [
      prompt,
      step('a', 'r3', 1),
      step('b', 'r3', 2),
      step('k', 'r2', 2),
      step('j', 'r1', 1)
    ];
    const views = stepViews(cells, 'p');
    assert.equal(stepLabel(1, views.get(1)), 'run 3 · step 1');
    assert.equal(stepLabel(2, views.get(2)), 'run 3 · step 2');
    assert.equal(stepLabel(2, views.get(3)), 'run 2 · step 2');
    assert.equal(stepLabel(1, views.get(4)), 'run 1 · step 1');
  });

  it('the latest request is the newest run wherever it sits', () => {
    const cells = [prompt, step('k', 'old', 2), step('a', 'new', 1)];
    const views = stepViews(cells, 'p', 'new');
    assert.equal(views.get(1)!.run, 1);
    assert.equal(views.get(2)!.run, 2);
  });

  it('ignores other prompts and user cells', () => {
    const cells = [
      prompt,
      step('a', 'r1', 1),
      { id: 'u', type: 'code', source: 'x' },
      step('o', 'q1', 1, 'ok', 'other')
    ];
    assert.deepEqual([...stepViews(cells, 'p').keys()], [1]);
  });
});
