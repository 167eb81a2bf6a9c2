/**
 * Stdin interception for a prompt cell's execution: the kernel's own questions
 * (approve this action? replay?) are answered by the extension (questions.ts), and
 * `input()` inside an action is asked in the step cell that runs it, not in the
 * prompt cell whose request owns the stdin channel.
 */

import { Kernel, KernelMessage } from '@jupyterlab/services';

import { QuestionDesk } from './questions';

export type Future = Kernel.IShellFuture<
  KernelMessage.IExecuteRequestMsg,
  KernelMessage.IExecuteReplyMsg
>;

/** The part of JupyterLab's OutputArea that shows an input box. */
export interface IInputArea {
  onInputRequest(msg: KernelMessage.IInputRequestMsg, future: Future): void;
}

export interface IStdinRoutes {
  /** Whether execution `owner` is about to ask a question announced on the comm. */
  expects(owner: string): boolean;
  /**
   * Whether execution `owner`'s request already ended: an input request arriving now
   * (stdin and IOPub race) was asked before an interrupt and nobody waits for it.
   */
  stale(owner: string): boolean;
  /** Where `input()` of execution `owner` is asked now: the running step's cell, if any. */
  inputArea(owner: string): IInputArea | null;
  /**
   * Whether execution `owner` runs a request whose action has not started here yet:
   * an input request can overtake its `action_start` (stdin and IOPub are different
   * channels), and belongs to that action's cell.
   */
  actionComing(owner: string): boolean;
  /** Execution `owner` is done. */
  done(owner: string): void;
}

export class StdinRouter {
  readonly desk: QuestionDesk;
  private readonly _watched = new WeakSet<object>();

  constructor(
    private readonly routes: IStdinRoutes,
    private readonly kernel: () => Kernel.IKernelConnection | null
  ) {
    this.desk = new QuestionDesk(owner => routes.expects(owner));
  }

  /** Take over the input requests of one execution. */
  watch(future: Future): void {
    if (this._watched.has(future) || future.isDisposed) {
      return;
    }
    this._watched.add(future);
    const kernel = this.kernel();
    const original = future.onStdin;
    const owner = future.msg.header.msg_id;
    future.onStdin = msg => {
      if (!kernel || !KernelMessage.isInputRequestMsg(msg)) {
        return original(msg);
      }
      if (this.routes.stale(owner)) {
        return;
      }
      this.desk.request(
        owner,
        msg.content.prompt,
        value => kernel.sendInputReply({ status: 'ok', value }, msg.header),
        () => this._input(owner, msg, future, () => void original(msg), Date.now())
      );
    };
    future.done
      .catch(() => undefined)
      .then(() => {
        this.desk.clear(owner);
        this.routes.done(owner);
      });
  }

  clear(): void {
    this.desk.clear();
  }

  /** Ask `input()` in the step cell that runs it, once its action is known here. */
  private _input(
    owner: string,
    msg: KernelMessage.IInputRequestMsg,
    future: Future,
    inPrompt: () => void,
    since: number
  ): void {
    if (this.routes.stale(owner)) {
      return;
    }
    const area = this.routes.inputArea(owner);
    if (area) {
      area.onInputRequest(msg, future);
    } else if (this.routes.actionComing(owner) && Date.now() - since < this.desk.waitMs) {
      setTimeout(() => this._input(owner, msg, future, inPrompt, since), 50);
    } else {
      inPrompt();
    }
  }
}
