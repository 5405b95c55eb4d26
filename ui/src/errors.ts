// How the UI shows a backend error: the translated sentence for its code (i18n.ts) with the
// details filled in, and the backend's raw English message and code only inside a collapsed
// <details> element. Every place that shows an error goes through here.
import { h } from './dom';
import { errorText, t } from './i18n';
import { toHearthError, type HearthError } from './ipc';

/** The user-facing sentence for any error (a rejection, a stream's error event, a stored Message.error). */
export function errorSentence(e: unknown): string {
  const err = toHearthError(e);
  return errorText(err.code, err.details);
}

/** The collapsed "details" disclosure: the code and the backend's raw message. */
export function errorDetailsEl(err: HearthError): HTMLElement {
  return h(
    'details',
    { class: 'error-details' },
    h('summary', null, t('error.details')),
    h('p', { class: 'error-code' }, `${t('error.code')}: `, h('code', null, err.code)),
    h('p', { class: 'error-raw', lang: 'en' }, err.message),
  );
}

/** The sentence followed by its details disclosure, for inline use (toasts, messages, rows, fields). */
export function errorBlock(e: unknown, attrs: Record<string, string | null> = {}): HTMLElement {
  const err = toHearthError(e);
  return h('div', { class: 'error-block', 'data-error-code': err.code, ...attrs }, h('p', { class: 'error-sentence' }, errorText(err.code, err.details)), errorDetailsEl(err));
}
