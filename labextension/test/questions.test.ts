import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';

import { QuestionDesk } from '../src/questions';

const APPROVAL = 'Run step 1? [Y]es / [n]o (skip) / [s]top: ';
const REPLAY_PROMPT = 'replay? ';
/** The request's state says a question comes (approval mode, an action not yet approved). */
const expecting = (): boolean => true;

describe('QuestionDesk', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('answers a question announced before its input request', () => {
    const desk = new QuestionDesk();
    const replies: string[] = [];
    desk.announce({ owner: 'x', prompt: REPLAY_PROMPT, asked: reply => reply('replay') });
    desk.request('x', REPLAY_PROMPT, v => replies.push(v), () => assert.fail('shown'));
    assert.deepEqual(replies, ['replay']);
    assert.equal(desk.pending, 0);
  });

  it('holds an input request that arrives before its announcement', () => {
    const desk = new QuestionDesk(expecting, 1000);
    const replies: string[] = [];
    let shown = false;
    desk.request('x', APPROVAL, v => replies.push(v), () => (shown = true));
    mock.timers.tick(500);
    desk.announce({ owner: 'x', prompt: APPROVAL, asked: reply => reply('y') });
    mock.timers.tick(1000);
    assert.deepEqual(replies, ['y']);
    assert.equal(shown, false);
  });

  it('shows the user a question nobody announced, after a grace period', () => {
    const desk = new QuestionDesk(expecting, 1000);
    let shown = 0;
    desk.request('x', APPROVAL, () => assert.fail('answered'), () => shown++);
    mock.timers.tick(999);
    assert.equal(shown, 0);
    mock.timers.tick(1);
    assert.equal(shown, 1);
    assert.equal(desk.pending, 0);
  });

  it('passes the user code’s own input() straight through', () => {
    // Not expecting: the action runs (approved, or no approval mode).
    const desk = new QuestionDesk(() => false);
    desk.announce({ owner: 'x', prompt: APPROVAL, asked: () => assert.fail('wrong question') });
    let shown = 0;
    desk.request('x', 'Your name: ', () => assert.fail('answered'), () => shown++);
    assert.equal(shown, 1);
  });

  it('decides by the request state, not by the words of the prompt', () => {
    const desk = new QuestionDesk(owner => owner === 'asking', 1000);
    let shown = 0;
    // A program printing the kernel's own words is still the program's input().
    desk.request('running', APPROVAL, () => assert.fail('answered'), () => shown++);
    assert.equal(shown, 1);
    desk.request('asking', 'Proceed? ', () => undefined, () => shown++);
    assert.equal(desk.pending, 1, 'held for its announcement');
  });

  it('keeps executions apart and clears one at a time', () => {
    const desk = new QuestionDesk(owner => owner === 'b');
    desk.announce({ owner: 'a', prompt: APPROVAL, asked: () => assert.fail('wrong owner') });
    let shown = 0;
    desk.request('c', 'Your name: ', () => undefined, () => shown++);
    desk.request('b', APPROVAL, () => undefined, () => shown++);
    assert.equal(desk.pending, 2);
    desk.clear('a');
    assert.equal(desk.pending, 1);
    desk.clear();
    assert.equal(desk.pending, 0);
    mock.timers.tick(5000);
    assert.equal(shown, 1);
  });
});
