// Attachments in the composer and the history: image thumbnails (made and cached by the
// backend, shown as data: URLs), a card per document (kind, size, tokens and the summary plan
// for the loaded model, or why it cannot be read), the summary with its progress bar and
// cancel, and the extracted text in a dialog. Text from files is always inserted as text.
import { basename, h, icon } from '../dom';
import { formatBytes, formatDuration, formatNumber, t, type Key } from '../i18n';
import * as ipc from '../ipc';
import { Channel, type AttachmentInfo, type DocumentCard, type SummaryProgress } from '../ipc';
import { errorBlock } from '../errors';
import { render, state } from '../state';
import { showError, showToast } from '../toast';
import { openConversation } from './chat';
import { refreshConversations } from './sidebar';

/** The image types the backend stores as images (hearth::store::attachment_kind). */
const IMAGE_EXT = /\.(png|jpe?g|webp|gif|bmp)$/i;

export function isImagePath(p: string): boolean {
  return IMAGE_EXT.test(p);
}

// ---------- thumbnails ----------

type Thumb = { url: string } | { failed: true } | 'pending';
const thumbs = new Map<string, Thumb>();

/**
 * An <img> for a thumbnail once `load` answered, else a file icon (while it loads, or when
 * the image cannot be read). `key` caches the answer; the region is redrawn when it arrives.
 */
function thumbEl(key: string, name: string, load: () => Promise<string>, region: 'composer' | 'messages'): Element {
  const got = thumbs.get(key);
  if (got === undefined) {
    thumbs.set(key, 'pending');
    load()
      .then((url) => thumbs.set(key, /^data:image\/(png|jpeg);base64,/.test(url) ? { url } : { failed: true }))
      .catch(() => thumbs.set(key, { failed: true }))
      .finally(() => render(region));
  }
  if (got && got !== 'pending' && 'url' in got) return h('img', { class: 'chip-thumb', src: got.url, alt: t('attach.preview', { name }) });
  return icon('file');
}

export function composerThumb(path: string): Element {
  return thumbEl(`path:${path}`, basename(path), () => ipc.imageThumbnail(path), 'composer');
}

/** A stored message's attachments as chips, images with their thumbnails. */
export function messageAttachments(items: AttachmentInfo[] | undefined, names: string[] | undefined): HTMLElement | null {
  const list: { name: string; el: Element; doc?: AttachmentInfo }[] = items?.length
    ? items.map((a) => (a.kind === 'image' ? { name: a.name, el: thumbEl(`att:${a.id}`, a.name, () => ipc.attachmentThumbnail(a.id), 'messages') } : { name: a.name, el: icon('file'), doc: a }))
    : (names ?? []).map((p) => ({ name: basename(p), el: isImagePath(p) && p.includes('/') ? thumbEl(`path:${p}`, basename(p), () => ipc.imageThumbnail(p), 'messages') : icon('file') }));
  if (list.length === 0) return null;
  return h(
    'ul',
    { class: 'chips msg-chips', 'aria-label': t('composer.attachments') },
    list.map((a) => {
      const doc = a.doc;
      // A stored document opens its text.
      if (doc) return h('li', { class: 'chip', title: a.name }, h('button', { type: 'button', class: 'chip-open', 'data-action': 'attachment-text', 'aria-label': t('doc.textOf', { name: a.name }), onclick: () => void showText(a.name, () => ipc.attachmentText(doc.id)) }, a.el, h('span', { class: 'chip-name' }, a.name)));
      return h('li', { class: 'chip', title: a.name }, a.el, h('span', { class: 'chip-name' }, a.name));
    }),
  );
}

// ---------- document cards ----------

const cards = new Map<string, DocumentCard | 'pending'>();

/** A card depends on the file and on the model it was planned for. */
function cardKey(path: string): string {
  const m = state.model;
  return `${path}\u0000${m.state}\u0000${m.modelId ?? ''}\u0000${m.contextSize ?? ''}`;
}

interface SummaryRun {
  paths: string[];
  progress: SummaryProgress | null;
  cancelling: boolean;
}
let running: SummaryRun | null = null;

export function summaryRunning(): boolean {
  return running !== null;
}

const KINDS: Record<string, Key> = {
  text: 'doc.kind.text', markdown: 'doc.kind.markdown', html: 'doc.kind.html', pdf: 'doc.kind.pdf',
  docx: 'doc.kind.docx', code: 'doc.kind.code', csv: 'doc.kind.csv', json: 'doc.kind.json',
};
const VERDICTS: Record<string, Key> = { fits: 'doc.verdict.fits', tight: 'doc.verdict.tight', 'too big': 'doc.verdict.tooBig' };

export function documentCards(paths: string[]): HTMLElement | null {
  const docs = paths.filter((p) => !isImagePath(p));
  if (docs.length === 0) return null;
  return h('div', { class: 'doc-cards' }, docs.map(documentCard));
}

function documentCard(path: string): HTMLElement {
  const key = cardKey(path);
  const got = cards.get(key);
  if (got === undefined) {
    cards.set(key, 'pending');
    ipc
      .describeDocument(path)
      .then((c) => cards.set(key, c))
      .catch((e) => cards.set(key, { path, name: basename(path), sizeBytes: 0, kind: null, chars: null, tokens: null, model: state.model.state, plan: null, error: ipc.toHearthError(e) }))
      .finally(() => render('composer'));
  }
  const name = basename(path);
  const attrs = { class: 'doc-card', 'data-path': path, role: 'group', 'aria-label': t('doc.card', { name }) };
  if (got === undefined || got === 'pending') {
    return h('section', attrs, h('div', { class: 'doc-head' }, icon('file'), h('strong', { class: 'doc-name' }, name)), h('p', { class: 'muted small doc-status' }, t('doc.reading')));
  }
  const c = got;
  const facts: string[] = [];
  if (c.kind) facts.push(t(KINDS[c.kind] ?? 'doc.kind.text'));
  facts.push(formatBytes(c.sizeBytes));
  if (c.tokens !== null) facts.push(t('doc.tokens', { n: formatNumber(c.tokens) }));
  else if (c.chars !== null) facts.push(t('doc.chars', { n: formatNumber(c.chars) }));
  const body: Node[] = [];
  if (c.error) body.push(errorBlock(c.error, { class: 'error-block doc-error' }));
  else if (c.plan) body.push(planEl(c));
  else body.push(h('p', { class: 'muted small doc-status doc-no-model' }, t(c.model === 'loading' ? 'doc.modelLoading' : 'doc.noModel')));
  const runHere = running?.paths.includes(path) ?? false;
  const readable = c.kind !== null;
  const actions = h(
    'div',
    { class: 'doc-actions' },
    readable ? h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'view-text', onclick: () => void openTextDialog(path) }, t('doc.viewText')) : null,
    c.plan && !runHere ? h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'summarize', disabled: running !== null || state.streaming !== null, onclick: () => void summarize(path) }, t('doc.summarize')) : null,
  );
  return h(
    'section',
    attrs,
    h('div', { class: 'doc-head' }, icon('file'), h('strong', { class: 'doc-name' }, c.name), h('span', { class: 'muted small doc-facts' }, facts.join(' · '))),
    body,
    runHere && running ? progressEl(running) : null,
    actions,
  );
}

function planEl(c: DocumentCard): HTMLElement {
  const p = c.plan!;
  const mode = p.mode === 'whole' ? t('doc.planWhole', { context: formatNumber(p.context) }) : t('doc.planMapReduce', { chunks: p.chunks, levels: p.reduceLevels });
  const time = p.seconds !== null ? t('doc.planTime', { time: formatDuration(p.seconds) }) : t('doc.planTimeUnknown');
  const verdict = VERDICTS[p.memoryVerdict];
  const memory = t('doc.planMemory', { memory: formatBytes(p.memoryBytes), verdict: verdict ? t(verdict) : p.memoryVerdict });
  return h('ul', { class: 'doc-plan small', 'data-mode': p.mode }, h('li', { class: 'plan-mode' }, mode), h('li', { class: 'plan-time' }, time), h('li', { class: 'plan-memory' }, memory));
}

function progressEl(run: SummaryRun): HTMLElement {
  const p = run.progress;
  const total = p?.tokensTotal ?? 0;
  const read = Math.min(p?.tokensRead ?? 0, total);
  const pct = total > 0 ? Math.round((read / total) * 100) : 0;
  const parts = [t('doc.progress', { read: formatNumber(read), total: formatNumber(total) })];
  if (p && p.tokensPerS > 0) parts.push(t('doc.rate', { rate: p.tokensPerS.toFixed(1) }));
  if (p && p.secondsLeft !== null) parts.push(t('doc.left', { time: formatDuration(p.secondsLeft) }));
  const label = parts.join(' · ');
  return h(
    'div',
    { class: 'doc-progress' },
    h('div', { class: 'progress', role: 'progressbar', 'aria-label': t('doc.summarizing', { name: run.paths.map(basename).join(', ') }), 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': read, 'aria-valuetext': label }, h('span', { class: 'progress-fill', style: `width:${pct}%` })),
    h('p', { class: 'small muted doc-progress-text' }, label),
    h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'cancel-summary', disabled: run.cancelling, onclick: () => void cancelSummary() }, t('doc.cancel')),
  );
}

async function summarize(path: string): Promise<void> {
  if (running || state.streaming) return;
  const run: SummaryRun = { paths: [path], progress: null, cancelling: false };
  running = run;
  render('composer');
  const ch = new Channel<ipc.SummaryEvent>();
  ch.onmessage = (ev) => {
    if (running !== run || ev.kind !== 'progress') return;
    run.progress = { tokensRead: ev.tokensRead, tokensTotal: ev.tokensTotal, stepsDone: ev.stepsDone, stepsTotal: ev.stepsTotal, tokensPerS: ev.tokensPerS, secondsLeft: ev.secondsLeft };
    render('composer');
  };
  try {
    const result = await ipc.summarizeDocuments([path], ch);
    running = null;
    if (result.cancelled || !result.conversationId) {
      showToast(t('doc.cancelled'), null);
      render('composer');
      return;
    }
    // The document now lives in the new conversation with its summary; open it there.
    state.attachments = state.attachments.filter((p) => p !== path);
    showToast(t('doc.done', { name: basename(path) }), null);
    await refreshConversations();
    await openConversation(result.conversationId);
  } catch (e) {
    running = null;
    showError(e);
    render('composer');
  }
}

async function cancelSummary(): Promise<void> {
  if (!running) return;
  running.cancelling = true;
  render('composer');
  try {
    await ipc.cancelSummary();
  } catch (e) {
    showError(e);
  }
}

// ---------- extracted text ----------

/** Shows a composer document's extracted text in a modal dialog. */
export function openTextDialog(path: string): Promise<void> {
  return showText(basename(path), () => ipc.documentText(path));
}

/** Shows a document's extracted text (`load`) in a modal dialog, as plain text. */
async function showText(name: string, load: () => Promise<ipc.Extracted>): Promise<void> {
  const pre = h('pre', { class: 'doc-text', tabindex: '0' });
  pre.textContent = t('doc.reading');
  const close = h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'close-text' }, t('doc.close'));
  const dialog = h('dialog', { class: 'text-dialog', 'aria-label': t('doc.textTitle', { name }) }, h('h2', null, t('doc.textTitle', { name })), pre, h('div', { class: 'dialog-actions' }, close));
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  try {
    const doc = await load();
    // textContent: the file's text is never parsed as markup.
    pre.textContent = doc.text;
  } catch (e) {
    pre.replaceWith(errorBlock(e));
  }
}

// ---------- pasted images ----------

function toBase64(bytes: Uint8Array): string {
  let s = '';
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) s += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(s);
}

/** Saves the images in a paste through the backend; answers their paths (the text pastes as usual). */
export async function pastedImages(data: DataTransfer | null): Promise<string[]> {
  const files = Array.from(data?.items ?? [])
    .filter((it) => it.kind === 'file' && it.type.startsWith('image/'))
    .map((it) => it.getAsFile())
    .filter((f): f is File => f !== null);
  const out: string[] = [];
  for (const f of files) {
    try {
      out.push(await ipc.savePastedImage(toBase64(new Uint8Array(await f.arrayBuffer()))));
    } catch (e) {
      showError(e);
    }
  }
  return out;
}
