/**
 * Keyboard shortcuts for an action awaiting approval, registered as JupyterLab commands
 * (so they show in the command palette and Settings › Keyboard Shortcuts, and can be
 * rebound there).
 *
 * While the active cell is an action awaiting approval, its notebook carries
 * `codeact-mod-approval`; only then do the bindings match, and being more specific
 * than JupyterLab's own they win over "run cell" for that cell only. A pending action
 * is a raw cell, which JupyterLab's own run commands leave alone; the keys that mean
 * "run this cell", Shift+Enter and Ctrl/Cmd+Enter, answer Run instead, and Alt+S,
 * which JupyterLab leaves unbound, answers Skip.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker } from '@jupyterlab/notebook';

import type { IApproval } from './controller';

export const RUN_COMMAND = 'codeact:run-action';
export const SKIP_COMMAND = 'codeact:skip-action';
export const RUN_KEYS: readonly string[] = ['Shift Enter', 'Accel Enter'];
export const SKIP_KEYS: readonly string[] = ['Alt S'];

// One selector per notebook mode: more specific than JupyterLab's own run bindings.
const SELECTORS = [
  '.jp-Notebook.jp-mod-commandMode.codeact-mod-approval',
  '.jp-Notebook.jp-mod-editMode.codeact-mod-approval'
];

function isMac(): boolean {
  return typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
}

/** "Shift Enter" as a person reads it on this platform: "Shift+Enter", "⌘+Enter". */
export function keyLabel(keys: string, mac = isMac()): string {
  return keys
    .split(' ')
    .map(key => (key === 'Accel' ? (mac ? '⌘' : 'Ctrl') : key === 'Alt' && mac ? '⌥' : key))
    .join('+');
}

/**
 * Register Run / Skip for the active cell of the current notebook.
 * `approvalOf` finds the approval the active cell waits for, if any.
 */
export function registerApprovalCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  approvalOf: () => IApproval | undefined
): void {
  const current = (): IApproval | undefined =>
    tracker.currentWidget && tracker.currentWidget === app.shell.currentWidget
      ? approvalOf()
      : undefined;
  app.commands.addCommand(RUN_COMMAND, {
    label: 'CodeAct: Run the Action Awaiting Approval',
    caption: 'Approve the proposed code action in the active cell and run it',
    isEnabled: () => current() !== undefined,
    execute: () => current()?.run()
  });
  app.commands.addCommand(SKIP_COMMAND, {
    label: 'CodeAct: Skip the Action Awaiting Approval',
    caption: 'Decline the proposed code action in the active cell; the model is told',
    isEnabled: () => current() !== undefined,
    execute: () => current()?.skip()
  });
  for (const selector of SELECTORS) {
    for (const keys of RUN_KEYS) {
      app.commands.addKeyBinding({ command: RUN_COMMAND, keys: [keys], selector });
    }
    for (const keys of SKIP_KEYS) {
      app.commands.addKeyBinding({ command: SKIP_COMMAND, keys: [keys], selector });
    }
  }
}
