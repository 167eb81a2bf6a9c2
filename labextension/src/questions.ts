/**
 * Pairing the kernel's stdin questions with their comm announcements.
 *
 * While a cell runs the kernel cannot read comm messages reliably (ipykernel queues
 * them behind the execution), so it asks over stdin, which it reads during an
 * execution, and announces each question on the comm first. The announcement (IOPub)
 * and the input_request (stdin) travel on different channels and may arrive in either
 * order; the desk holds whichever comes first for the other. Whether an input request
 * that came first is a kernel question is decided by the request's state, not by its
 * words (`expects`): a stdin request that is not one goes to the usual input box.
 */

export type Reply = (value: string) => void;

/** Whether execute request `owner` is about to ask a question announced on the comm. */
export type Expects = (owner: string) => boolean;

export interface IQuestion {
  /** The msg_id of the execute request that asks (the comm message's parent). */
  owner: string;
  prompt: string;
  /** Called once the matching input_request is here; `reply` answers it. */
  asked(reply: Reply): void;
}

interface IHeld {
  owner: string;
  prompt: string;
  reply: Reply;
  timer: ReturnType<typeof setTimeout>;
}

export class QuestionDesk {
  private announced: IQuestion[] = [];
  private held: IHeld[] = [];

  /**
   * @param expects whether an input_request of an execution, arriving before any
   *   announcement, is a kernel question (the request's state says so).
   * @param waitMs how long such an input_request waits for its announcement before it
   *   is shown to the user as ordinary input.
   */
  constructor(
    readonly expects: Expects = () => false,
    readonly waitMs = 3000
  ) {}

  /** A question announced on the comm. */
  announce(question: IQuestion): void {
    const index = this.held.findIndex(
      held => held.owner === question.owner && held.prompt === question.prompt
    );
    if (index >= 0) {
      const [held] = this.held.splice(index, 1);
      clearTimeout(held.timer);
      question.asked(held.reply);
      return;
    }
    this.announced.push(question);
  }

  /**
   * An input_request of execute request `owner` arrived; `fallback` shows it to the
   * user instead.
   */
  request(owner: string, prompt: string, reply: Reply, fallback: () => void): void {
    const index = this.announced.findIndex(
      question => question.owner === owner && question.prompt === prompt
    );
    if (index >= 0) {
      const [question] = this.announced.splice(index, 1);
      question.asked(reply);
      return;
    }
    if (!this.expects(owner)) {
      fallback();
      return;
    }
    const timer = setTimeout(() => {
      this.held = this.held.filter(held => held.timer !== timer);
      fallback();
    }, this.waitMs);
    this.held.push({ owner, prompt, reply, timer });
  }

  /** Forget the questions of one execution (it ended), or all (a restart). */
  clear(owner?: string): void {
    const mine = (item: { owner: string }): boolean =>
      owner === undefined || item.owner === owner;
    for (const held of this.held.filter(mine)) {
      clearTimeout(held.timer);
    }
    this.held = this.held.filter(held => !mine(held));
    this.announced = this.announced.filter(question => !mine(question));
  }

  get pending(): number {
    return this.announced.length + this.held.length;
  }
}
