// Transient notices at the bottom of the window: errors, confirmations and undo offers.
import { h, icon } from './dom';
import { errorDetailsEl, errorSentence } from './errors';
import { t } from './i18n';
import { toHearthError } from './ipc';

export interface ToastOptions {
  kind?: 'info' | 'error';
  action?: { label: string; run: () => void };
  /** Milliseconds before it closes by itself; 0 keeps it until dismissed. */
  timeout?: number;
  /** Called when the toast closes for any reason other than its action. */
  onClose?: () => void;
}

let region: HTMLElement | null = null;

export function toastRegion(): HTMLElement {
  region ??= h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
  return region;
}

export function showToast(title: string, body: string | Node | null, opts: ToastOptions = {}): () => void {
  let closed = false;
  const close = (viaAction: boolean) => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    el.remove();
    if (!viaAction) opts.onClose?.();
  };
  const el = h(
    'div',
    { class: `toast toast-${opts.kind ?? 'info'}`, role: opts.kind === 'error' ? 'alert' : null },
    h('div', { class: 'toast-text' }, h('strong', null, title), body === null ? null : typeof body === 'string' ? h('span', null, body) : body),
    opts.action
      ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => { close(true); opts.action!.run(); } }, opts.action.label)
      : null,
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('toast.dismiss'), onclick: () => close(false) }, icon('close')),
  );
  toastRegion().append(el);
  const timer = opts.timeout === 0 ? undefined : setTimeout(() => close(false), opts.timeout ?? (opts.kind === 'error' ? 10000 : 4000));
  // Someone reading an error's details keeps the toast until they dismiss it ('toggle' does not
  // bubble, so listen in the capture phase).
  el.addEventListener('toggle', () => clearTimeout(timer), true);
  return () => close(false);
}

/**
 * Shows a backend error (a rejection, a stream's error event, a stored error) to the user: the
 * translated sentence, with the code and raw message only in a collapsed details element.
 */
export function showError(e: unknown): void {
  const err = toHearthError(e);
  showToast(errorSentence(err), errorDetailsEl(err), { kind: 'error' });
}
