import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ReplayBatches } from '../src/replay';

describe('ReplayBatches', () => {
  it('decides once the whole batch is scheduled (Run All)', async () => {
    const seen: string[][] = [];
    const batches = new ReplayBatches((id, batch) => {
      seen.push([id, ...batch]);
      return batch.size > 1;
    });
    batches.scheduled('prompt', true);
    batches.scheduled('step-1', false);
    await Promise.resolve();
    assert.deepEqual(seen, [['prompt', 'prompt', 'step-1']]);
    assert.equal(batches.take('prompt'), 'replay');
    assert.equal(batches.take('prompt'), 'model', 'a verdict is used once');
  });

  it('asks the model for a prompt run on its own', async () => {
    const batches = new ReplayBatches((_, batch) => batch.size > 1);
    batches.scheduled('prompt', true);
    await Promise.resolve();
    assert.equal(batches.take('prompt'), 'model');
  });

  it('keeps separate runs apart', async () => {
    const batches = new ReplayBatches((_, batch) => batch.has('step-1'));
    batches.scheduled('prompt', true);
    await Promise.resolve();
    batches.scheduled('step-1', false);
    await Promise.resolve();
    assert.equal(batches.take('prompt'), 'model');
  });
});
