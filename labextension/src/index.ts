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

type Context = DocumentRegistry.IContext<INotebookModel>;

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'codeact-kernel-lab:plugin',
  description: 'Turns the code actions of the codeact kernel into notebook cells.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker): void => {
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
  }
};

export default plugin;
