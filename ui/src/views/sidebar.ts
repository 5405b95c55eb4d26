// The conversation list: new, open, rename, pin, delete with undo, full-text search, and page navigation.
import { h, icon } from '../dom';
import { t } from '../i18n';
import * as ipc from '../ipc';
import { SNIPPET_MARK_END, SNIPPET_MARK_START, type Conversation } from '../ipc';
import { render as renderRegions, state, type View } from '../state';
import { showError, showToast } from '../toast';
import { openConversation, newChat } from './chat';

const UNDO_MS = 6000;

let root: HTMLElement;
let searchInput: HTMLInputElement;
let listEl: HTMLElement;
let renamingId: string | null = null;
let searchTimer: ReturnType<typeof setTimeout> | undefined;
let searchSeq = 0;

export function mountSidebar(): HTMLElement {
  searchInput = h('input', {
    type: 'search',
    id: 'search',
    class: 'search-input',
    autocomplete: 'off',
    oninput: () => scheduleSearch(),
    onkeydown: (e: KeyboardEvent) => {
      if (e.key === 'Escape' && searchInput.value !== '') {
        e.stopPropagation();
        searchInput.value = '';
        scheduleSearch();
      }
    },
  });
  listEl = h('nav', { class: 'conv-nav' });
  root = h('aside', { class: 'sidebar' });
  render();
  return root;
}

export function focusSearch(): void {
  searchInput.focus();
  searchInput.select();
}

export async function refreshConversations(): Promise<void> {
  try {
    const page = await ipc.listConversations({ limit: 50 });
    state.conversations = page.items;
    state.nextCursor = page.nextCursor;
  } catch (e) {
    showError(e);
  }
  renderList();
}

async function loadMore(): Promise<void> {
  if (!state.nextCursor) return;
  try {
    const page = await ipc.listConversations({ cursor: state.nextCursor, limit: 50 });
    const known = new Set(state.conversations.map((c) => c.id));
    state.conversations.push(...page.items.filter((c) => !known.has(c.id)));
    state.nextCursor = page.nextCursor;
  } catch (e) {
    showError(e);
  }
  renderList();
}

function scheduleSearch(): void {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => void runSearch(), 150);
}

async function runSearch(): Promise<void> {
  const query = searchInput.value.trim();
  state.searchQuery = query;
  const seq = ++searchSeq;
  if (query === '') {
    state.searchHits = null;
    renderList();
    return;
  }
  try {
    const hits = await ipc.searchConversations(query, 30);
    if (seq !== searchSeq) return; // a newer query is in flight
    state.searchHits = hits;
  } catch (e) {
    showError(e);
    state.searchHits = [];
  }
  renderList();
}

function navButton(view: View, label: string, iconName: string): HTMLElement {
  return h(
    'button',
    {
      type: 'button',
      class: 'nav-btn',
      'data-view': view,
      'aria-current': state.view === view ? 'page' : null,
      onclick: () => {
        state.view = view;
        renderRegions('main', 'sidebar');
      },
    },
    icon(iconName),
    label,
  );
}

function render(): void {
  searchInput.placeholder = t('sidebar.searchPlaceholder');
  searchInput.setAttribute('aria-label', t('sidebar.search'));
  root.setAttribute('aria-label', t('sidebar.label'));
  root.replaceChildren(
    h(
      'div',
      { class: 'sidebar-top' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), t('app.name')),
      h('button', { type: 'button', class: 'btn btn-primary new-chat', id: 'new-chat', onclick: () => newChat(), title: 'Ctrl+N' }, icon('plus'), t('sidebar.new')),
      h('div', { class: 'search-wrap' }, icon('search'), searchInput),
    ),
    listEl,
    h(
      'div',
      { class: 'sidebar-bottom' },
      navButton('chat', t('nav.chats'), 'chat'),
      navButton('models', t('nav.models'), 'box'),
      navButton('settings', t('nav.settings'), 'gear'),
    ),
  );
  renderList();
}

export function renderSidebar(): void {
  render();
}

function renderList(): void {
  listEl.setAttribute('aria-label', state.searchHits ? t('sidebar.results') : t('sidebar.label'));
  if (state.searchHits) {
    listEl.replaceChildren(renderHits());
    return;
  }
  const visible = state.conversations.filter((c) => !state.pendingDelete.has(c.id) && !c.archived);
  const pinned = visible.filter((c) => c.pinned);
  const recent = visible.filter((c) => !c.pinned);
  const sections: Node[] = [];
  if (visible.length === 0) sections.push(h('p', { class: 'muted empty-list' }, t('sidebar.empty')));
  if (pinned.length) sections.push(section(t('sidebar.pinned'), pinned, 'pinned'));
  if (recent.length) sections.push(section(t('sidebar.recent'), recent, 'recent'));
  if (state.nextCursor) sections.push(h('button', { type: 'button', class: 'btn btn-ghost more', onclick: () => void loadMore() }, t('sidebar.more')));
  listEl.replaceChildren(...sections);
}

function section(title: string, convs: Conversation[], id: string): HTMLElement {
  const headingId = `conv-h-${id}`;
  return h('section', { class: 'conv-section' }, h('h2', { id: headingId, class: 'section-title' }, title), h('ul', { class: 'conv-list', 'aria-labelledby': headingId }, convs.map(item)));
}

function titleOf(c: Conversation): string {
  return c.title.trim() || t('conv.untitled');
}

function item(c: Conversation): HTMLElement {
  const title = titleOf(c);
  const active = c.id === state.activeId;
  if (renamingId === c.id) {
    const input = h('input', {
      class: 'rename-input',
      value: c.title,
      'aria-label': t('conv.renameLabel', { title }),
      onkeydown: (e: KeyboardEvent) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          void commitRename(c, input.value);
        } else if (e.key === 'Escape') {
          e.preventDefault();
          e.stopPropagation();
          renamingId = null;
          renderList();
        }
      },
      onblur: () => {
        if (renamingId === c.id) void commitRename(c, input.value);
      },
    });
    queueMicrotask(() => {
      input.focus();
      input.select();
    });
    return h('li', { class: 'conv-item renaming' }, input);
  }
  return h(
    'li',
    { class: `conv-item${active ? ' active' : ''}`, 'data-id': c.id },
    h('button', { type: 'button', class: 'conv-open', 'aria-current': active ? 'page' : null, onclick: () => void openConversation(c.id) }, c.pinned ? icon('pin') : null, h('span', { class: 'conv-title' }, title)),
    h(
      'span',
      { class: 'conv-actions', role: 'group', 'aria-label': t('conv.actions', { title }) },
      h('button', { type: 'button', class: 'icon-btn', 'data-action': 'pin', 'aria-label': `${c.pinned ? t('conv.unpin') : t('conv.pin')}: ${title}`, 'aria-pressed': c.pinned ? 'true' : 'false', onclick: () => void togglePin(c) }, icon('pin')),
      h('button', { type: 'button', class: 'icon-btn', 'data-action': 'rename', 'aria-label': `${t('conv.rename')}: ${title}`, onclick: () => { renamingId = c.id; renderList(); } }, icon('edit')),
      h('button', { type: 'button', class: 'icon-btn', 'data-action': 'delete', 'aria-label': `${t('conv.delete')}: ${title}`, onclick: () => deleteWithUndo(c) }, icon('trash')),
    ),
  );
}

async function commitRename(c: Conversation, value: string): Promise<void> {
  renamingId = null;
  const title = value.trim();
  if (title === '' || title === c.title) {
    renderList();
    return;
  }
  try {
    const updated = await ipc.renameConversation(c.id, title);
    replaceConv(updated);
  } catch (e) {
    showError(e);
  }
  renderList();
  renderRegions('header');
}

async function togglePin(c: Conversation): Promise<void> {
  try {
    replaceConv(await ipc.pinConversation(c.id, !c.pinned));
  } catch (e) {
    showError(e);
  }
  renderList();
}

function replaceConv(updated: Conversation): void {
  state.conversations = state.conversations.map((x) => (x.id === updated.id ? updated : x));
}

// Deleting hides the conversation at once and only calls delete_conversation when the undo window closes,
// so undo needs no restore command and an app quit inside the window keeps the data.
function deleteWithUndo(c: Conversation): void {
  state.pendingDelete.add(c.id);
  if (state.activeId === c.id) newChat();
  renderList();
  showToast(t('conv.deleted', { title: titleOf(c) }), null, {
    timeout: UNDO_MS,
    action: {
      label: t('toast.undo'),
      run: () => {
        state.pendingDelete.delete(c.id);
        renderList();
      },
    },
    onClose: () => {
      void ipc
        .deleteConversation(c.id)
        .then(() => {
          state.conversations = state.conversations.filter((x) => x.id !== c.id);
        })
        .catch(showError)
        .finally(() => {
          state.pendingDelete.delete(c.id);
          renderList();
        });
    },
  });
  (document.getElementById('search') as HTMLElement | null)?.blur();
  (root.querySelector('.conv-open') as HTMLElement | null)?.focus();
}

function renderHits(): HTMLElement {
  const hits = state.searchHits ?? [];
  if (hits.length === 0) return h('p', { class: 'muted empty-list' }, t('sidebar.noResults'));
  return h(
    'ul',
    { class: 'conv-list hits' },
    hits.map((hit) =>
      h(
        'li',
        { class: 'conv-item hit' },
        h(
          'button',
          { type: 'button', class: 'conv-open', onclick: () => void openConversation(hit.conversationId, hit.messageId) },
          h('span', { class: 'conv-title' }, hit.title.trim() || t('conv.untitled')),
          h('span', { class: 'snippet' }, snippetNodes(hit.snippet)),
        ),
      ),
    ),
  );
}

/** Splits a marked snippet into text and <mark> nodes; the snippet is never parsed as HTML. */
export function snippetNodes(snippet: string): Node[] {
  const out: Node[] = [];
  let rest = snippet;
  while (rest.length) {
    const s = rest.indexOf(SNIPPET_MARK_START);
    if (s < 0) break;
    const e = rest.indexOf(SNIPPET_MARK_END, s + 1);
    if (e < 0) break;
    if (s > 0) out.push(document.createTextNode(rest.slice(0, s)));
    out.push(h('mark', null, rest.slice(s + 1, e)));
    rest = rest.slice(e + 1);
  }
  const tail = rest.split(SNIPPET_MARK_START).join('').split(SNIPPET_MARK_END).join('');
  if (tail) out.push(document.createTextNode(tail));
  return out;
}
