/**
 * The comm's lifecycle: one comm per notebook document and kernel connection, opened
 * when the kernel is a codeact kernel, again after a restart (JupyterLab disposes the
 * comms of a restarted kernel) and when the notebook switches kernels.
 */

import type { ISessionContext } from '@jupyterlab/apputils';
import type { Kernel, KernelMessage } from '@jupyterlab/services';

import {
  COMM_TARGET,
  EXTENSION_VERSION,
  IHello,
  KernelMessage as CodeActMessage,
  parseKernelMessage,
  PROTOCOL_VERSION
} from './protocol';

/** The kernelspec name and kernel implementation of the codeact kernel. */
const KERNEL_NAME = 'codeact';
const IMPLEMENTATION = 'codeact_kernel';

export interface ILinkHandlers {
  /** A message of the kernel; `parentMsgId` is the execute request it belongs to. */
  message(data: CodeActMessage, parentMsgId: string): void;
  /** The kernel restarted, died or was replaced: every request state ends. */
  reset(): void;
}

export class KernelLink {
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _codeact: boolean | null = null;
  private _unsupported = false;
  private _disposed = false;

  constructor(
    private readonly session: ISessionContext,
    private readonly handlers: ILinkHandlers
  ) {
    session.kernelChanged.connect(this._onKernelChanged, this);
    this._setKernel(session.session?.kernel ?? null);
  }

  get kernel(): Kernel.IKernelConnection | null {
    return this._kernel;
  }

  /** Whether the kernel is a codeact kernel (so far as known). */
  get isCodeAct(): boolean {
    return this._codeact === true;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._setKernel(null);
    this.session.kernelChanged.disconnect(this._onKernelChanged, this);
  }

  /** Send a message to the kernel; false when there is no comm. */
  send(data: object): boolean {
    this._ensureComm();
    if (!this._comm || this._comm.isDisposed) {
      return false;
    }
    this._comm.send(data as unknown as KernelMessage.ICommMsgMsg['content']['data']);
    return true;
  }

  private _onKernelChanged(
    _: ISessionContext,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._setKernel(change.newValue);
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (this._kernel) {
      this._kernel.statusChanged.disconnect(this._onStatus, this);
    }
    this.handlers.reset();
    this._kernel = kernel;
    this._comm = null;
    this._unsupported = false;
    this._codeact = null;
    if (!kernel) {
      return;
    }
    kernel.statusChanged.connect(this._onStatus, this);
    if (kernel.name === KERNEL_NAME) {
      this._codeact = true;
    }
    kernel.info
      .then(info => {
        if (this._kernel === kernel) {
          this._codeact = kernel.name === KERNEL_NAME || info.implementation === IMPLEMENTATION;
          this._ensureComm();
        }
      })
      .catch(() => undefined);
    this._ensureComm();
  }

  private _onStatus(kernel: Kernel.IKernelConnection, status: Kernel.Status): void {
    if (kernel !== this._kernel) {
      return;
    }
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._comm = null;
      this.handlers.reset();
    } else if (status === 'idle') {
      this._ensureComm();
    }
  }

  private _ensureComm(): void {
    const kernel = this._kernel;
    if (!kernel || this._codeact !== true || this._unsupported || this._disposed) {
      return;
    }
    if (this._comm && !this._comm.isDisposed) {
      return;
    }
    if (!kernel.handleComms) {
      return;
    }
    try {
      const comm = kernel.createComm(COMM_TARGET);
      comm.onMsg = msg => this._onCommMsg(comm, msg);
      comm.onClose = () => {
        if (this._comm === comm) {
          this._comm = null;
        }
      };
      const hello: IHello = { protocol: PROTOCOL_VERSION, extension: EXTENSION_VERSION };
      comm.open(hello as unknown as KernelMessage.ICommOpenMsg['content']['data']);
      this._comm = comm;
    } catch (reason) {
      console.warn('codeact: could not open the comm', reason);
    }
  }

  private _onCommMsg(comm: Kernel.IComm, msg: KernelMessage.ICommMsgMsg): void {
    const data = parseKernelMessage(msg.content.data);
    if (data === null) {
      return;
    }
    if (data.type === 'unsupported') {
      console.warn(
        `codeact: the kernel does not speak protocol ${PROTOCOL_VERSION} of this ` +
          `extension (it speaks ${data.supported.join(', ')}); generated cells are ` +
          'rendered inline. Install matching versions of codeact-kernel.'
      );
      this._unsupported = true;
      if (this._comm === comm) {
        this._comm = null;
      }
      return;
    }
    const parentMsgId = String((msg.parent_header as { msg_id?: string }).msg_id ?? '');
    try {
      this.handlers.message(data, parentMsgId);
    } catch (reason) {
      console.error('codeact: could not handle', data.type, reason);
    }
  }
}
