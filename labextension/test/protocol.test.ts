import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseKernelMessage } from '../src/protocol';

const scoped = { request_id: 'r', cell_id: 'c' };

describe('parseKernelMessage', () => {
  it('accepts the messages of protocol 1', () => {
    const messages = [
      { type: 'welcome', protocol: 1, kernel: '0.1.0' },
      { type: 'unsupported', protocol: 7, supported: [1] },
      { type: 'request_start', ...scoped, model: 'm', started: 1.5 },
      { type: 'progress', ...scoped, step: 1, state: 'thinking' },
      { type: 'action_start', ...scoped, step: 1, code: 'x', model: 'm' },
      { type: 'approval_request', ...scoped, step: 2, prompt: 'Run?' },
      {
        type: 'action_end',
        ...scoped,
        step: 1,
        code: 'x',
        model: 'm',
        status: 'ok',
        outputs: [],
        execution_count: 3,
        error_name: null
      },
      { type: 'request_end', ...scoped, status: 'ok', steps: 1, tokens: 3, seconds: 1, error: null },
      { type: 'replay_query', ...scoped, prompt: 'replay? ' }
    ];
    for (const message of messages) {
      assert.deepEqual(parseKernelMessage(message), message, message.type);
    }
  });

  it('ignores unknown types, keeps unknown fields', () => {
    assert.equal(parseKernelMessage({ type: 'from_the_future', ...scoped }), null);
    const extended = { type: 'progress', ...scoped, step: 2, novelty: true };
    assert.deepEqual(parseKernelMessage(extended), extended);
  });

  it('rejects malformed messages', () => {
    for (const bad of [
      null,
      'progress',
      [],
      {},
      { type: 'progress', ...scoped },
      { type: 'progress', ...scoped, step: 0 },
      { type: 'action_start', ...scoped, step: 1 },
      { type: 'action_end', ...scoped, step: 1, code: 'x', status: 'weird', outputs: [] },
      { type: 'action_end', ...scoped, step: 1, code: 'x', status: 'ok', outputs: {} },
      { type: 'request_start', cell_id: 'c', model: 'm' }
    ]) {
      assert.equal(parseKernelMessage(bad), null, JSON.stringify(bad));
    }
  });
});
