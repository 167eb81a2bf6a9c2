import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  executionStatus,
  expectedType,
  findAction,
  generatedBy,
  ICellInfo,
  insertionIndex,
  IProvenance,
  isEdited,
  provenance,
  replacement,
  replaySteps,
  RAISES_EXCEPTION,
  reportedLive,
  shouldReplay,
  sourceHash,
  withoutTag,
  withTag
} from '../src/cells';

function user(id: string, source = 'x = 1'): ICellInfo {
  return { id, type: 'code', source };
}

function generated(
  id: string,
  prompt: string,
  request: string,
  step: number,
  source = `step_${step}()`,
  status: IProvenance['status'] = 'ok'
): ICellInfo {
  const record: IProvenance = {
    version: 1,
    prompt_cell_id: prompt,
    request_id: request,
    step,
    model: 'openai:m',
    status,
    source_hash: sourceHash(source)
  };
  return { id, type: expectedType(status), source, codeact: record };
}

/** Apply insertions the way the controller does, to check the resulting order. */
function insertAll(
  cells: ICellInfo[],
  prompt: string,
  request: string,
  steps: number[]
): string[] {
  const result = [...cells];
  for (const step of steps) {
    if (findAction(result, prompt, request, step) >= 0) {
      continue;
    }
    const index = insertionIndex(result, prompt, request, step);
    assert.notEqual(index, null);
    result.splice(index!, 0, generated(`${request}-${step}`, prompt, request, step));
  }
  return result.map(cell => cell.id);
}

describe('sourceHash', () => {
  it('is stable and notices any change', () => {
    assert.equal(sourceHash('print(1)'), sourceHash('print(1)'));
    assert.notEqual(sourceHash('print(1)'), sourceHash('print(1) '));
    assert.notEqual(sourceHash(''), sourceHash(' '));
    assert.match(sourceHash('é∑ 😀'), /^fnv1a32:[0-9a-f]{8}$/);
  });
});

describe('provenance', () => {
  it('reads metadata.codeact and rejects anything else', () => {
    assert.equal(provenance(user('a')), null);
    assert.equal(provenance({ ...user('a'), codeact: 'text' }), null);
    assert.equal(provenance({ ...user('a'), codeact: { prompt_cell_id: 'p' } }), null);
    assert.equal(provenance(generated('g', 'p', 'r', 1))?.step, 1);
  });
});

describe('isEdited', () => {
  it('compares the source with the hash taken when it was generated', () => {
    const cell = generated('g', 'p', 'r', 1, 'print(1)');
    assert.equal(isEdited(cell), false);
    assert.equal(isEdited({ ...cell, source: 'print(2)' }), true);
    assert.equal(isEdited(user('u')), false);
  });

  it('counts a changed cell type as an edit', () => {
    const cell = generated('g', 'p', 'r', 1);
    assert.equal(isEdited({ ...cell, type: 'markdown' }), true);
    const skipped = generated('s', 'p', 'r', 2, 'rm()', 'skipped');
    assert.equal(skipped.type, 'raw');
    assert.equal(isEdited(skipped), false);
  });
});

describe('insertionIndex', () => {
  it('puts the first action directly below the prompt', () => {
    const cells = [user('a'), user('p'), user('b')];
    assert.equal(insertionIndex(cells, 'p', 'r', 1), 2);
  });

  it('keeps the actions of a request in order, below the prompt, above later cells', () => {
    const cells = [user('a'), user('p'), user('b')];
    assert.deepEqual(insertAll(cells, 'p', 'r', [1, 2, 3]), ['a', 'p', 'r-1', 'r-2', 'r-3', 'b']);
  });

  it('fills a missed step in its place', () => {
    const cells = [user('p'), generated('r-1', 'p', 'r', 1), generated('r-3', 'p', 'r', 3)];
    assert.deepEqual(insertAll(cells, 'p', 'r', [2]), ['p', 'r-1', 'r-2', 'r-3']);
    const late = [user('p'), generated('r-3', 'p', 'r', 3), user('u')];
    assert.deepEqual(insertAll(late, 'p', 'r', [1]), ['p', 'r-1', 'r-3', 'u']);
  });

  it('follows the previous step where the user moved it', () => {
    const cells = [user('p'), user('u1'), generated('r-1', 'p', 'r', 1), user('u2')];
    assert.deepEqual(insertAll(cells, 'p', 'r', [2]), ['p', 'u1', 'r-1', 'r-2', 'u2']);
  });

  it('goes above cells kept from an earlier request', () => {
    const kept = generated('old-1', 'p', 'old', 1, 'edited by the user');
    kept.codeact = { ...(kept.codeact as object), source_hash: sourceHash('original') };
    const cells = [user('p'), kept, user('u')];
    assert.deepEqual(insertAll(cells, 'p', 'new', [1, 2]), ['p', 'new-1', 'new-2', 'old-1', 'u']);
  });

  it('ignores the cells of other prompts', () => {
    const cells = [user('p'), user('q'), generated('q-1', 'q', 'r', 1)];
    assert.equal(insertionIndex(cells, 'p', 'r', 2), 1);
  });

  it('gives up when the prompt cell is gone', () => {
    assert.equal(insertionIndex([user('a')], 'p', 'r', 1), null);
  });
});

describe('findAction (idempotency)', () => {
  it('finds the one cell of (prompt, request, step)', () => {
    const cells = [
      user('p'),
      generated('a', 'p', 'r1', 1),
      generated('b', 'p', 'r2', 1),
      generated('c', 'q', 'r2', 1)
    ];
    assert.equal(findAction(cells, 'p', 'r2', 1), 2);
    assert.equal(findAction(cells, 'p', 'r2', 2), -1);
  });

  it('makes a repeated message a no-op (two views, one document)', () => {
    const once = insertAll([user('p')], 'p', 'r', [1, 2]);
    let cells: ICellInfo[] = [user('p')];
    for (const step of [1, 1, 2, 1, 2]) {
      const ids = insertAll(cells, 'p', 'r', [step]);
      cells = ids.map(id => (id === 'p' ? user('p') : generated(id, 'p', 'r', Number(id.at(-1)))));
    }
    assert.deepEqual(
      cells.map(c => c.id),
      once
    );
  });
});

describe('replacement', () => {
  it('removes unedited cells of earlier requests and keeps edited ones', () => {
    const edited = generated('e', 'p', 'old', 2, 'changed');
    edited.codeact = { ...(edited.codeact as object), source_hash: sourceHash('as generated') };
    const cells = [
      user('u0'),
      user('p'),
      generated('o1', 'p', 'old', 1),
      edited,
      generated('o3', 'p', 'older', 1),
      user('u1'),
      generated('other', 'q', 'old', 1),
      generated('n1', 'p', 'new', 1)
    ];
    const plan = replacement(cells, 'p', 'new');
    assert.deepEqual(plan.remove, ['o1', 'o3']);
    assert.deepEqual(plan.keep, ['e']);
  });

  it('never touches user cells', () => {
    const cells = [user('p'), user('u', 'step_1()'), user('v')];
    assert.deepEqual(replacement(cells, 'p', 'new'), { remove: [], keep: [] });
  });
});

describe('shouldReplay', () => {
  const cells = [user('p'), generated('g1', 'p', 'r', 1), generated('g2', 'p', 'r', 2), user('u')];

  it('replays when the generated cells run in the same batch', () => {
    assert.equal(shouldReplay(cells, 'p', new Set(['p', 'g1', 'g2', 'u'])), true);
    assert.equal(shouldReplay(cells, 'p', new Set(['p', 'g2'])), true);
  });

  it('asks the model when the prompt runs on its own', () => {
    assert.equal(shouldReplay(cells, 'p', new Set(['p'])), false);
    assert.equal(shouldReplay(cells, 'p', new Set(['p', 'u'])), false);
    assert.equal(shouldReplay([user('p')], 'p', new Set(['p'])), false);
  });

  it('replays a prompt answered without cells when it runs with others (Run All)', () => {
    const prose = [user('p'), user('u')];
    assert.equal(shouldReplay(prose, 'p', new Set(['p', 'u']), true), true);
    assert.equal(shouldReplay(prose, 'p', new Set(['p']), true), false, 'Run on its own asks');
    assert.equal(shouldReplay(prose, 'p', new Set(['p', 'u']), false), false, 'never answered');
    // With cells of its own, those decide (they re-run the work).
    assert.equal(shouldReplay(cells, 'p', new Set(['p', 'u']), true), false);
  });

  it('counts a raw (skipped) action as no cell: it never runs', () => {
    const skipped = [user('p'), generated('g1', 'p', 'r', 1, 'x()', 'skipped'), user('u')];
    assert.equal(shouldReplay(skipped, 'p', new Set(['p', 'u']), true), true, 'Run All replays');
    assert.equal(shouldReplay(skipped, 'p', new Set(['p']), true), false, 'Run on its own asks');
  });
});

describe('expectedType', () => {
  it('keeps every action nobody approved in a raw cell, which nothing runs', () => {
    assert.equal(expectedType('pending'), 'raw');
    assert.equal(expectedType('skipped'), 'raw');
    for (const status of ['running', 'ok', 'error', 'interrupted', 'edited'] as const) {
      assert.equal(expectedType(status), 'code', status);
    }
  });

  it('reads a pending raw cell as unedited, and an edited source as edited', () => {
    const pending = generated('g1', 'p', 'r', 1, 'x()', 'pending');
    assert.equal(pending.type, 'raw');
    assert.equal(isEdited(pending), false);
    assert.equal(isEdited({ ...pending, source: 'y()' }), true);
  });
});

describe('executionStatus', () => {
  it('is the truth about the latest execution', () => {
    assert.deepEqual(executionStatus(true, null), { status: 'ok', error_name: null });
    assert.deepEqual(executionStatus(false, 'ZeroDivisionError'), {
      status: 'error',
      error_name: 'ZeroDivisionError'
    });
    assert.deepEqual(executionStatus(false, 'KeyboardInterrupt'), {
      status: 'interrupted',
      error_name: 'KeyboardInterrupt'
    });
    assert.deepEqual(executionStatus(false, ''), { status: 'error', error_name: null });
  });

  it('goes with the raises-exception tag only while failing', () => {
    assert.deepEqual(withoutTag(['a', RAISES_EXCEPTION], RAISES_EXCEPTION), ['a']);
    assert.deepEqual(withoutTag(undefined, RAISES_EXCEPTION), []);
  });
});

describe('replaySteps', () => {
  it('lists the generated cells as they will run', () => {
    const cells = [
      user('p'),
      generated('g1', 'p', 'r', 1, 'a = 1'),
      user('u'),
      generated('g2', 'p', 'r', 2, 'a + 1', 'error')
    ];
    assert.deepEqual(replaySteps(cells, 'p'), [
      { step: 1, code: 'a = 1', status: 'ok' },
      { step: 2, code: 'a + 1', status: 'error' }
    ]);
    assert.deepEqual(generatedBy(cells, 'p'), [1, 3]);
  });
});

describe('withTag', () => {
  it('adds a tag once and keeps the others', () => {
    assert.deepEqual(withTag(undefined, RAISES_EXCEPTION), ['raises-exception']);
    assert.deepEqual(withTag(['a'], 'b'), ['a', 'b']);
    const tags = ['a', 'b'];
    assert.deepEqual(withTag(tags, 'a'), ['a', 'b']);
    assert.deepEqual(tags, ['a', 'b']);
    assert.deepEqual(withTag('not a list', 'b'), ['b']);
  });
});

describe('reportedLive', () => {
  const record = (status: IProvenance['status']): IProvenance => ({
    version: 1,
    prompt_cell_id: 'p',
    request_id: 'r',
    step: 1,
    model: 'm',
    status,
    source_hash: sourceHash('x')
  });

  it('leaves running and pending to the comm while their request runs here', () => {
    assert.equal(reportedLive(record('running'), true), true);
    assert.equal(reportedLive(record('pending'), true), true);
  });

  it('lets an execution or edit correct a status nobody reports any more', () => {
    // Saved mid-run (page reloaded, browser closed): the next execution is the truth.
    assert.equal(reportedLive(record('running'), false), false);
    assert.equal(reportedLive(record('pending'), false), false);
    assert.equal(reportedLive(record('ok'), true), false);
  });
});
