/**
 * codeact-kernel-lab: every code action of the codeact kernel becomes a real code cell
 * below its prompt cell, with its outputs and provenance (docs/protocol.md).
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import type { Cell } from '@jupyterlab/cells';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import {
  INotebookModel,
  INotebookTracker,
  Notebook,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';

import { NotebookController } from './controller';
import { Decorator } from './decorations';
import { registerApprovalCommands } from './shortcuts';

type Context = DocumentRegistry.IContext<INotebookModel>;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'codeact-kernel-lab:plugin',
  description: 'Turns the code actions of the codeact kernel into notebook cells.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    // One controller per document, shared by all its views: each cell is made once.
    const controllers = new WeakMap<Context, NotebookController>();

    const cellWidgets = (context: Context, cellId: string): Cell[] =>
      tracker
        .filter(panel => panel.context === context)
        .flatMap(panel => panel.content.widgets.filter(cell => cell.model.id === cellId));

    const controllerFor = (panel: NotebookPanel): NotebookController => {
      const context = panel.context;
      let controller = controllers.get(context);
      if (!controller) {
        const made = new NotebookController(context, id => cellWidgets(context, id));
        context.disposed.connect(() => made.dispose());
        controllers.set(context, made);
        controller = made;
      }
      return controller;
    };

    registerApprovalCommands(app, tracker, () => {
      const panel = tracker.currentWidget;
      const cell = panel?.content.activeCell;
      return panel && cell ? controllers.get(panel.context)?.approval(cell.model) : undefined;
    });

    tracker.widgetAdded.connect((_, panel) => {
      const decorator = new Decorator(panel, controllerFor(panel));
      panel.disposed.connect(() => decorator.dispose());
    });

    NotebookActions.executionScheduled.connect(
      (_: unknown, args: { notebook: Notebook; cell: Cell }) => {
        const panel = tracker.find(candidate => candidate.content === args.notebook);
        if (panel) {
          controllers.get(panel.context)?.onExecutionScheduled(args.cell);
        }
      }
    );

    // A generated cell's status follows its own executions (Run All, Run), too.
    NotebookActions.executed.connect((_, args) => {
      const panel = tracker.find(candidate => candidate.content === args.notebook);
      if (panel) {
        const errorName = args.error?.errorName ?? null;
        controllers.get(panel.context)?.onExecuted(args.cell, args.success, errorName);
      }
    });
  }
};

export default plugin;
