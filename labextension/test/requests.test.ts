import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RequestMachine } from '../src/requests';

function machine(approvalMode = false): RequestMachine {
  return new RequestMachine('r1', 'prompt', 'exec-1', 1000, approvalMode);
}

describe('RequestMachine', () => {
  it('goes thinking → writing → running → thinking through one step', () => {
    const request = machine();
    assert.equal(request.state, 'thinking');
    request.progress({ step: 1, state: 'thinking' });
    request.progress({ step: 1, state: 'writing', tokens: 12, estimated: true });
    assert.equal(request.state, 'writing');
    assert.equal(request.tokens, 12);
    assert.equal(request.estimated, true);
    assert.equal(request.message, 'writing…');
    request.actionStart(1);
    assert.equal(request.state, 'running');
    assert.equal(request.current, 1);
    assert.equal(request.runningStep(), 1);
    request.actionEnd(1);
    assert.equal(request.state, 'thinking');
    assert.equal(request.current, null);
    assert.equal(request.runningStep(), null);
    assert.deepEqual([...request.actions], [1]);
  });

  it('counts real tokens after the estimate and keeps a notice', () => {
    const request = machine();
    request.progress({ step: 1, state: 'writing', tokens: 40, estimated: true });
    request.progress({ step: 1, tokens: 35 });
    assert.equal(request.tokens, 35);
    assert.equal(request.estimated, false);
    request.progress({ step: 2, state: 'thinking', message: 'rate-limited, retrying in 1 s' });
    assert.equal(request.step, 2);
    assert.equal(request.message, 'rate-limited, retrying in 1 s');
  });

  it('a progress message inside an action window does not end the action', () => {
    const request = machine();
    request.actionStart(1);
    request.progress({ step: 1, state: 'thinking', tokens: 9 });
    assert.equal(request.state, 'running');
    assert.equal(request.tokens, 9);
  });

  it('in approval mode an action waits: its input request is the kernel question', () => {
    const request = machine(true);
    // The question may overtake its action_start (another channel): still a question.
    assert.equal(request.expectsQuestion(), true);
    request.actionStart(1);
    assert.equal(request.state, 'approval');
    assert.equal(request.expectsQuestion(), true);
    assert.equal(request.runningStep(), null, 'nothing runs while it waits');
    request.approvalAsked(1);
    assert.equal(request.state, 'approval');
    request.answered(1);
    assert.equal(request.state, 'running');
    // The next step's question may overtake this action's end: still held for its
    // announcement; input() with none is asked in the running step's cell.
    assert.equal(request.expectsQuestion(), true);
    assert.equal(request.runningStep(), 1);
    request.actionEnd(1);
    request.actionStart(2);
    assert.equal(request.expectsQuestion(), true, 'each step is approved on its own');
  });

  it('without approval mode input requests are the action’s own', () => {
    const request = machine(false);
    request.actionStart(1);
    assert.equal(request.expectsQuestion(), false);
    assert.equal(request.runningStep(), 1);
  });

  it('an approval request switches a request into approval mode', () => {
    const request = machine(false);
    request.actionStart(3);
    request.approvalAsked(3);
    assert.equal(request.state, 'approval');
    assert.equal(request.expectsQuestion(), true);
  });

  it('a skipped action closes its window without running', () => {
    const request = machine(true);
    request.actionStart(1);
    request.answered(1);
    request.actionEnd(1);
    assert.equal(request.state, 'thinking');
    assert.equal(request.awaitsApproval(1), false);
  });

  it('ends once and then ignores late messages', () => {
    const request = machine();
    request.actionStart(1);
    request.end({
      type: 'request_end',
      request_id: 'r1',
      cell_id: 'prompt',
      status: 'interrupted',
      steps: 1,
      tokens: 5,
      seconds: 1,
      error: null
    });
    assert.equal(request.ended, true);
    assert.equal(request.current, null);
    assert.equal(request.ending?.status, 'interrupted');
    request.actionStart(2);
    request.progress({ step: 2, state: 'writing', tokens: 99 });
    assert.equal(request.state, 'ended');
    assert.equal(request.tokens, 0);
    assert.deepEqual([...request.actions], [1]);
  });

  it('an end without request_end keeps no outcome', () => {
    const request = machine();
    request.end(null);
    assert.equal(request.ended, true);
    assert.equal(request.ending, null);
  });
});
