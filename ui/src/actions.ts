/**
 * Buttons that call a REST operation: while it runs the button is disabled; its outcome (or
 * the server's refusal, with its code and message) is shown in the page's outcome line.
 */
import { ApiError } from './api';
import { h, type Attrs } from './dom';

/** The line a page shows outcomes in. */
export class Outcome {
  readonly el = h('p', { class: 'outcome', role: 'status', 'aria-live': 'assertive', 'data-testid': 'outcome' }, 'Ready for your actions.');

  /** Shows a success. */
  ok(text: string): void {
    this.el.dataset.kind = 'ok';
    this.el.textContent = text;
  }

  /** Shows a refusal or failure. */
  error(what: string, err: unknown): void {
    this.el.dataset.kind = 'error';
    this.el.textContent = `${what} refused: ${err instanceof ApiError ? err.text : err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * A button running `run` (a REST call) when clicked; `done` words the success from its
 * result. `data-op` names the operation, for tests and for the eye.
 */
export function actionButton<T>(outcome: Outcome, label: string, op: string, run: () => Promise<T>, done: (r: T) => string = () => `${label}: done`, attrs: Attrs = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', 'data-op': op, ...attrs }, label);
  b.addEventListener('click', () => {
    b.disabled = true;
    run()
      .then((r) => outcome.ok(done(r)))
      .catch((err: unknown) => outcome.error(label, err))
      .finally(() => {
        b.disabled = false;
      });
  });
  return b;
}
