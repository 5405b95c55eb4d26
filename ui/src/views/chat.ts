// The chat view: header (title, model picker, context meter), the message log with streamed
// markdown, and the composer (Enter sends, Shift+Enter new line, Esc stops, file drop zone).
import { basename, h, icon } from '../dom';
import { formatNumber, t } from '../i18n';
import * as ipc from '../ipc';
import { Channel, type Message, type StreamEvent } from '../ipc';
import { errorBlock } from '../errors';
import { codeText, renderMarkdown, StreamRenderer, typesetMath } from '../markdown';
import { render, state } from '../state';
import { showError, showToast } from '../toast';
import { refreshConversations } from './sidebar';
import { loadModelById } from './models';
import { composerThumb, documentCards, isImagePath, messageAttachments, pastedImages } from './attachments';

let headerEl: HTMLElement;
let logEl: HTMLElement;
let composerEl: HTMLFormElement;
let textarea: HTMLTextAreaElement;
let sendBtn: HTMLButtonElement;
let chipsEl: HTMLElement;
let cardsEl: HTMLElement;
let attachBtn: HTMLButtonElement;
let hintEl: HTMLElement;
let streamBody: HTMLElement | null = null;
let streamRenderer: StreamRenderer | null = null;
let framePending = false;

export function mountChat(): { header: HTMLElement; log: HTMLElement; composer: HTMLElement } {
  headerEl = h('header', { class: 'chat-header' });
  logEl = h('section', { class: 'messages', role: 'log', 'aria-live': 'polite', tabindex: '-1' });
  logEl.addEventListener('click', onLogClick);
  textarea = h('textarea', { id: 'composer-input', rows: 1, onkeydown: onComposerKey, oninput: autosize, onpaste: onPaste });
  attachBtn = h('button', { type: 'button', class: 'icon-btn attach-btn', id: 'attach-btn', onclick: () => void pickFiles() });
  cardsEl = h('div', { class: 'doc-cards-region' });
  sendBtn = h('button', { type: 'submit', class: 'send-btn' });
  chipsEl = h('ul', { class: 'chips' });
  hintEl = h('p', { class: 'hint' });
  composerEl = h(
    'form',
    { class: 'composer', onsubmit: (e: Event) => { e.preventDefault(); if (state.streaming) void stop(); else void send(); } },
    chipsEl,
    cardsEl,
    h('div', { class: 'composer-row' }, attachBtn, textarea, sendBtn),
    hintEl,
  );
  for (const ev of ['dragenter', 'dragover']) composerEl.addEventListener(ev, (e) => { e.preventDefault(); composerEl.classList.add('dragging'); });
  composerEl.addEventListener('dragleave', () => composerEl.classList.remove('dragging'));
  composerEl.addEventListener('drop', (e) => {
    e.preventDefault();
    composerEl.classList.remove('dragging');
    // In a browser a File has no path; Tauri's own drag-drop event (see main.ts) supplies real paths.
    const files = Array.from(e.dataTransfer?.files ?? []);
    addAttachments(files.map((f) => (f as File & { path?: string }).path || f.name));
  });
  return { header: headerEl, log: logEl, composer: composerEl };
}

/** Highlights the composer as a drop target (used for the shell's drag events, which carry paths). */
export function setDropHighlight(on: boolean): void {
  composerEl.classList.toggle('dragging', on);
}

export function addAttachments(paths: string[]): void {
  for (const p of paths) if (p && !state.attachments.includes(p)) state.attachments.push(p);
  renderComposer();
}

async function pickFiles(): Promise<void> {
  try {
    addAttachments(await ipc.pickAttachmentFiles());
  } catch (e) {
    showError(e);
  }
}

// Images in a paste are saved by the backend and attached like dropped files; text pastes as usual.
function onPaste(e: ClipboardEvent): void {
  const data = e.clipboardData;
  const hasImage = Array.from(data?.items ?? []).some((it) => it.kind === 'file' && it.type.startsWith('image/'));
  if (!hasImage) return;
  if (!data?.types.includes('text/plain')) e.preventDefault();
  void pastedImages(data).then((paths) => {
    if (paths.length) addAttachments(paths);
  });
}

function autosize(): void {
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight, 240)}px`;
}

function onComposerKey(e: KeyboardEvent): void {
  // isComposing: Enter that confirms a Korean IME syllable must not send the message.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    if (!state.streaming) void send();
  }
}

export function focusComposer(): void {
  textarea?.focus();
}

// ---------- header ----------

export function renderHeader(): void {
  const conv = state.conversations.find((c) => c.id === state.activeId);
  const title = conv ? conv.title.trim() || t('conv.untitled') : t('sidebar.new');
  headerEl.replaceChildren(h('h1', { class: 'chat-title' }, title), h('div', { class: 'header-tools' }, modelPicker(), contextMeter()));
}

function modelPicker(): HTMLElement {
  const m = state.model;
  const select = h(
    'select',
    {
      id: 'model-picker',
      'aria-label': t('picker.label'),
      disabled: m.state === 'loading',
      onchange: () => {
        if (select.value === '__manage') {
          state.view = 'models';
          render('main', 'sidebar');
        } else if (select.value) void loadModelById(select.value);
      },
    },
    m.modelId ? null : h('option', { value: '' }, t('picker.choose')),
    state.installed.map((im) => h('option', { value: im.id, selected: im.id === m.modelId }, im.name)),
    state.remote.map((r) => h('option', { value: r.name, selected: r.name === m.modelId, 'data-remote': r.url }, `${r.name} (${r.url})`)),
    h('option', { value: '__manage' }, `${t('nav.models')}…`),
  );
  let status: string;
  if (m.state === 'loading') status = t('picker.loading', { name: m.name ?? '', percent: Math.round(state.loadFraction * 100) });
  else if (m.state === 'ready' && m.remoteUrl) status = t('models.remote.runsOn', { url: m.remoteUrl });
  else if (m.state === 'ready') status = t('picker.ready', { name: m.name ?? '' });
  else if (m.state === 'error') status = t('picker.error');
  else status = t('picker.none');
  // Loading and failure are shown in words; the ready/none states are already clear from the select.
  const visible = m.state === 'loading' || m.state === 'error' || (m.state === 'ready' && !!m.remoteUrl);
  return h('div', { class: `picker state-${m.state}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), select, h('span', { class: visible ? 'picker-status small' : 'sr-only', id: 'model-state', role: 'status' }, status));
}

/**
 * Reads the open conversation's token count again. The count is the loaded model's (its template
 * and tokenizer); while none is ready it is 0, so a conversation opened during the start-up load
 * read 0: the models view calls this once a model is ready.
 */
export async function recountContext(): Promise<void> {
  const id = state.activeId;
  if (!id || state.streaming) return;
  try {
    const list = await ipc.listMessages(id);
    if (state.activeId === id && !state.streaming) {
      state.contextTokens = list.contextTokens;
      updateMeter();
    }
  } catch {
    // Only the meter's figure: it keeps the count it had.
  }
}

// Only the meter changes while tokens stream; redrawing the whole header would reset the picker.
function updateMeter(): void {
  headerEl.querySelector('#context-meter')?.replaceWith(contextMeter());
}

function contextMeter(): HTMLElement {
  const total = state.model.contextSize ?? state.settings?.contextSize ?? 0;
  const live = state.streaming && state.streaming.conversationId === state.activeId ? state.streaming : null;
  const used = state.contextTokens + (live ? estimateTokens(live.text) : 0);
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  const label = t('context.label', { used: formatNumber(used), total: formatNumber(total) });
  return h(
    'div',
    { class: 'meter', id: 'context-meter', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': Math.min(used, total), 'aria-label': label, title: label },
    h('span', { class: 'meter-track' }, h('span', { class: `meter-fill${pct > 85 ? ' high' : ''}`, style: `width:${pct}%` })),
    h('span', { class: 'meter-text', 'aria-hidden': 'true' }, t('context.short', { percent: pct })),
  );
}

// A rough live estimate while streaming; the backend's count replaces it when the reply is done.
function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

// ---------- messages ----------

export function renderMessages(): void {
  streamBody = null;
  streamRenderer = null;
  const items: Node[] = [];
  const msgs = state.messages;
  const streaming = state.streaming && state.streaming.conversationId === state.activeId ? state.streaming : null;
  if (msgs.length === 0 && !streaming) {
    items.push(h('div', { class: 'empty-chat' }, h('div', { class: 'empty-mark', 'aria-hidden': 'true' }), h('h2', null, t('chat.emptyTitle')), h('p', { class: 'muted' }, t('chat.empty'))));
  }
  const lastAssistant = [...msgs].reverse().find((m) => m.role === 'assistant');
  for (const m of msgs) items.push(messageEl(m, !state.streaming && m === lastAssistant));
  if (streaming) {
    if (streaming.userText !== null) items.push(pendingUser(streaming.userText, streaming.attachments));
    const body = h('div', { class: 'msg-body md' });
    streamBody = body;
    streamRenderer = new StreamRenderer(body);
    items.push(h('article', { class: 'msg msg-assistant streaming', 'aria-label': t('chat.assistant'), 'aria-busy': 'true' }, body, h('div', { class: 'msg-meta' }, h('span', { class: 'typing' }, t('chat.generating')))));
    paintStream();
  }
  logEl.setAttribute('aria-label', t('chat.messages'));
  logEl.replaceChildren(...items);
  scrollToEnd();
}

function scrollToEnd(): void {
  logEl.scrollTop = logEl.scrollHeight;
}

function pendingUser(text: string, attachments: string[]): HTMLElement {
  return h('article', { class: 'msg msg-user', 'aria-label': t('chat.you') }, attachmentList(attachments), h('div', { class: 'msg-body plain' }, text));
}

function attachmentList(paths: string[] | undefined): HTMLElement | null {
  return messageAttachments(undefined, paths);
}

function messageEl(m: Message, isLastAssistant: boolean): HTMLElement {
  const isUser = m.role === 'user';
  let body: HTMLElement;
  if (isUser && state.editingId === m.id) return editEl(m);
  if (isUser) body = h('div', { class: 'msg-body plain' }, m.text);
  else {
    body = h('div', { class: 'msg-body md' });
    body.append(renderMarkdown(m.text));
    typesetMath(body);
  }
  const meta: Node[] = [];
  if (m.branch.count > 1) meta.push(branchNav(m));
  if (!isUser) {
    if (m.stats) meta.push(h('span', { class: 'stats' }, t('chat.stats', { tokens: formatNumber(m.stats.tokens), rate: m.stats.tokensPerS.toFixed(1) })));
    const reason = stateLabel(m);
    if (reason) meta.push(h('span', { class: `badge ${m.state === 'error' ? 'badge-error' : ''}` }, reason));
  }
  const actions = h(
    'span',
    { class: 'msg-actions' },
    h('button', { type: 'button', class: 'icon-btn', 'data-action': 'copy', 'aria-label': t('chat.copy'), title: t('chat.copy'), onclick: (e: Event) => void copyText(m.text, e.currentTarget as HTMLElement) }, icon('copy')),
    isUser ? h('button', { type: 'button', class: 'icon-btn', 'data-action': 'edit', 'aria-label': t('chat.edit'), title: t('chat.edit'), disabled: !!state.streaming, onclick: () => startEdit(m.id) }, icon('edit')) : null,
    !isUser && isLastAssistant ? h('button', { type: 'button', class: 'icon-btn', 'data-action': 'regenerate', 'aria-label': t('chat.regenerate'), title: t('chat.regenerate'), onclick: () => void regenerate(m) }, icon('refresh')) : null,
  );
  meta.push(actions);
  // Why a reply failed: the translated sentence, the backend's own words behind "details".
  const failure = m.state === 'error' && m.error ? errorBlock(m.error, { class: 'error-block msg-error' }) : null;
  return h('article', { class: `msg ${isUser ? 'msg-user' : 'msg-assistant'} state-${m.state}`, 'aria-label': isUser ? t('chat.you') : t('chat.assistant'), 'data-id': m.id }, messageAttachments(m.attachmentItems, m.attachments), body, failure, h('div', { class: 'msg-meta' }, meta));
}

function stateLabel(m: Message): string | null {
  if (m.state === 'error') return t('chat.error');
  if (m.state === 'interrupted') return t('chat.interrupted');
  switch (m.stats?.stopReason) {
    case 'stopped':
      return t('chat.stopped');
    case 'context_full':
      return t('chat.contextFull');
    case 'max_tokens':
      return t('chat.maxTokens');
    default:
      return null;
  }
}

function branchNav(m: Message): HTMLElement {
  const { index, count } = m.branch;
  const go = async (delta: number) => {
    try {
      const list = await ipc.selectBranch(siblingId(m, delta));
      state.messages = list.messages;
      state.contextTokens = list.contextTokens;
      render('messages', 'header');
    } catch (e) {
      showError(e);
    }
  };
  return h(
    'span',
    { class: 'branch-nav', role: 'group', 'aria-label': t('chat.branch', { index: index + 1, count }) },
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('chat.prevBranch'), disabled: index === 0 || !!state.streaming, onclick: () => void go(-1) }, icon('left')),
    h('span', { class: 'branch-pos', 'aria-hidden': 'true' }, `${index + 1} / ${count}`),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('chat.nextBranch'), disabled: index >= count - 1 || !!state.streaming, onclick: () => void go(1) }, icon('right')),
  );
}

function siblingId(m: Message, delta: number): string {
  return m.branch.siblingIds[m.branch.index + delta] ?? m.id;
}

function editEl(m: Message): HTMLElement {
  const area = h('textarea', { class: 'edit-input', 'aria-label': t('chat.editLabel'), rows: 3 });
  area.value = m.text;
  const save = () => {
    const text = area.value.trim();
    if (text) void editAndResend(m, text);
  };
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      state.editingId = null;
      renderMessages();
    }
  });
  queueMicrotask(() => area.focus());
  return h(
    'article',
    { class: 'msg msg-user editing', 'aria-label': t('chat.editLabel'), 'data-id': m.id },
    area,
    h(
      'div',
      { class: 'edit-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => { state.editingId = null; renderMessages(); } }, t('chat.editCancel')),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'save-edit', onclick: save }, t('chat.editSave')),
    ),
  );
}

function startEdit(id: string): void {
  if (state.streaming) return;
  state.editingId = id;
  renderMessages();
}

function onLogClick(e: MouseEvent): void {
  const target = e.target as Element;
  const copyBtn = target.closest('[data-action="copy-code"]');
  if (copyBtn) {
    void copyText(codeText(copyBtn), copyBtn as HTMLElement);
    return;
  }
  const link = target.closest('.md a');
  if (link) {
    // Never navigate the app's webview; the shell opens http(s) links in the system browser after confirming.
    e.preventDefault();
    const href = link.getAttribute('href');
    if (href && /^(https?:|mailto:)/i.test(href)) void ipc.openExternal(href).catch(showError);
  }
}

async function copyText(text: string, button: HTMLElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    button.classList.add('copied');
    showToast(t('chat.copied'), null, { timeout: 1500 });
    setTimeout(() => button.classList.remove('copied'), 1500);
  } catch (e) {
    showError(e);
  }
}

// ---------- streaming ----------

function paintStream(): void {
  if (!streamBody || !state.streaming || state.streaming.conversationId !== state.activeId) return;
  // Every frame re-parses and re-sanitizes each block that changed: partial markup is never trusted.
  streamRenderer?.update(state.streaming.text);
  typesetMath(streamBody);
  const nearBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 120;
  if (nearBottom) scrollToEnd();
}

function scheduleStreamPaint(): void {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => {
    framePending = false;
    paintStream();
    updateMeter();
  });
}

function makeChannel(conversationId: string): Channel<StreamEvent> {
  const ch = new Channel<StreamEvent>();
  ch.onmessage = (ev) => {
    const s = state.streaming;
    if (!s || s.conversationId !== conversationId) return;
    if (ev.kind === 'token') {
      s.text += ev.text;
      scheduleStreamPaint();
    } else if (ev.kind === 'done') {
      void finishStream(conversationId);
    } else if (ev.kind === 'error') {
      showError(ev);
      void finishStream(conversationId);
    }
  };
  return ch;
}

async function finishStream(conversationId: string): Promise<void> {
  state.streaming = null;
  renderComposer();
  if (state.activeId === conversationId) await reloadMessages();
  // The turn may have titled the conversation (its first message): the header shows it too.
  void refreshConversations().then(() => render('header'));
}

async function reloadMessages(): Promise<void> {
  if (!state.activeId) return;
  try {
    const list = await ipc.listMessages(state.activeId);
    const live = state.streaming?.conversationId === state.activeId ? state.streaming : null;
    if (live) {
      // Coming back to a chat mid-reply: the store already has the user's turn and a 'streaming'
      // placeholder; show the stored turn and keep our live bubble instead of the placeholder.
      live.userText = null;
      live.attachments = [];
      state.messages = list.messages.filter((m) => m.state !== 'streaming');
    } else {
      state.messages = list.messages;
    }
    state.contextTokens = list.contextTokens;
  } catch (e) {
    showError(e);
  }
  render('messages', 'header');
}

/** Starts a reply; false when the backend refused to start it (the error is shown). */
async function runGeneration(conversationId: string, userText: string | null, attachments: string[], start: (ch: Channel<StreamEvent>) => Promise<unknown>): Promise<boolean> {
  state.streaming = { conversationId, text: '', userText, attachments, error: null };
  state.editingId = null;
  renderMessages();
  renderComposer();
  try {
    await start(makeChannel(conversationId));
    return true;
  } catch (e) {
    showError(e);
    if (state.streaming?.conversationId === conversationId) await finishStream(conversationId);
    return false;
  }
}

async function send(): Promise<void> {
  const text = textarea.value.trim();
  if (!text || state.streaming) return;
  if (state.model.state !== 'ready') {
    showToast(t('composer.noModel'), null, { kind: 'error' });
    return;
  }
  let convId = state.activeId;
  if (!convId) {
    try {
      const conv = await ipc.createConversation();
      state.conversations.unshift(conv);
      convId = conv.id;
      state.activeId = convId;
      state.messages = [];
      state.contextTokens = 0;
      render('sidebar', 'header');
    } catch (e) {
      showError(e);
      return;
    }
  }
  const attachments = [...state.attachments];
  textarea.value = '';
  autosize();
  state.attachments = [];
  const id = convId;
  const started = await runGeneration(id, text, attachments, (ch) => ipc.sendMessage(id, text, attachments, ch));
  // Refused (busy, a missing attachment, ...): nothing was stored, so give the draft back.
  if (!started && state.activeId === id && textarea.value === '' && state.attachments.length === 0) {
    textarea.value = text;
    autosize();
    state.attachments = attachments;
    renderComposer();
  }
}

async function regenerate(m: Message): Promise<void> {
  if (state.streaming || !state.activeId) return;
  // Show the conversation without the reply being replaced.
  state.messages = state.messages.filter((x) => x.id !== m.id);
  await runGeneration(state.activeId, null, [], (ch) => ipc.regenerate(m.id, ch));
}

async function editAndResend(m: Message, text: string): Promise<void> {
  if (state.streaming || !state.activeId) return;
  const idx = state.messages.findIndex((x) => x.id === m.id);
  state.messages = state.messages.slice(0, Math.max(0, idx));
  await runGeneration(state.activeId, text, m.attachments ?? [], (ch) => ipc.editMessage(m.id, text, ch));
}

export async function stop(): Promise<void> {
  const s = state.streaming;
  if (!s) return;
  try {
    await ipc.stopGeneration(s.conversationId);
  } catch (e) {
    showError(e);
  }
}

// ---------- composer ----------

export function renderComposer(): void {
  if (!composerEl) return;
  const streaming = !!state.streaming;
  textarea.placeholder = state.model.state === 'ready' ? t('composer.placeholder') : t('composer.noModel');
  textarea.setAttribute('aria-label', t('composer.label'));
  composerEl.setAttribute('aria-label', t('composer.label'));
  composerEl.dataset.dropLabel = t('composer.drop');
  sendBtn.replaceChildren(icon(streaming ? 'stop' : 'send'));
  sendBtn.setAttribute('aria-label', streaming ? t('composer.stop') : t('composer.send'));
  sendBtn.title = streaming ? t('composer.stop') : t('composer.send');
  sendBtn.classList.toggle('stop', streaming);
  sendBtn.id = streaming ? 'stop-btn' : 'send-btn';
  hintEl.textContent = t('shortcuts.hint');
  attachBtn.replaceChildren(icon('clip'));
  attachBtn.setAttribute('aria-label', t('composer.attach'));
  attachBtn.title = t('composer.attach');
  cardsEl.replaceChildren(documentCards(state.attachments) ?? '');
  chipsEl.setAttribute('aria-label', t('composer.attachments'));
  chipsEl.replaceChildren(
    ...state.attachments.map((p) =>
      h(
        'li',
        { class: 'chip', title: p },
        isImagePath(p) ? composerThumb(p) : icon('file'),
        h('span', { class: 'chip-name' }, basename(p)),
        h('button', { type: 'button', class: 'icon-btn chip-x', 'aria-label': t('composer.removeAttachment', { name: basename(p) }), onclick: () => { state.attachments = state.attachments.filter((x) => x !== p); renderComposer(); } }, icon('close')),
      ),
    ),
  );
}

// ---------- navigation ----------

/**
 * Shows conversation `id`. With `messageId` (a search hit), the branch holding that message is
 * made active first (search also finds older versions of edited or regenerated messages) and the
 * message is scrolled into view.
 */
export async function openConversation(id: string, messageId: string | null = null): Promise<void> {
  state.activeId = id;
  state.view = 'chat';
  state.editingId = null;
  state.messages = [];
  state.contextTokens = 0;
  render('main', 'sidebar');
  await reloadMessages();
  if (messageId && !state.messages.some((m) => m.id === messageId) && state.streaming?.conversationId !== id) {
    try {
      const list = await ipc.selectBranch(messageId);
      state.messages = list.messages;
      state.contextTokens = list.contextTokens;
      render('messages', 'header');
    } catch (e) {
      showError(e);
    }
  }
  if (messageId) {
    const el = document.querySelector(`.messages [data-id="${CSS.escape(messageId)}"]`);
    el?.scrollIntoView({ block: 'center' });
    el?.classList.add('search-target');
  }
  render('sidebar');
}

export function newChat(): void {
  state.activeId = null;
  state.view = 'chat';
  state.messages = [];
  state.contextTokens = 0;
  state.editingId = null;
  render('main', 'sidebar');
  focusComposer();
}

export function isStreaming(): boolean {
  return state.streaming !== null;
}
