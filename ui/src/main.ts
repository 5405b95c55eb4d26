// Entry point: builds the window's layout once, wires regions to their renderers, global
// shortcuts, theme and language, the shell's file-drop events, and the first data load.
import './styles.css';
import { listen } from '@tauri-apps/api/event';
import { h } from './dom';
import { onLanguageChange, setLanguage, t } from './i18n';
import * as ipc from './ipc';
import type { Settings, Theme } from './ipc';
import { onRender, render, state } from './state';
import { showError, toastRegion } from './toast';
import { addAttachments, focusComposer, setDropHighlight, isStreaming, mountChat, newChat, renderComposer, renderHeader, renderMessages, stop } from './views/chat';
import { firstRunEl, followModelLoading, importPath, modelsPage, refreshModels } from './views/models';
import { onSettingsApplied, settingsPage } from './views/settings';
import { focusSearch, mountSidebar, refreshConversations, renderSidebar } from './views/sidebar';

const mainEl = h('main', { class: 'main', id: 'main' });
const chat = mountChat();
const app = h('div', { class: 'app' }, mountSidebar(), mainEl, toastRegion());
document.getElementById('app')!.replaceWith(app);

function renderMain(): void {
  mainEl.dataset.view = state.view;
  if (state.view === 'models') {
    mainEl.setAttribute('aria-label', t('models.title'));
    mainEl.replaceChildren(modelsPage());
  } else if (state.view === 'settings') {
    mainEl.setAttribute('aria-label', t('settings.title'));
    mainEl.replaceChildren(settingsPage());
  } else if (state.installed.length === 0 && state.model.state !== 'ready' && state.messages.length === 0) {
    mainEl.setAttribute('aria-label', t('firstrun.title'));
    mainEl.replaceChildren(firstRunEl());
  } else {
    mainEl.setAttribute('aria-label', t('chat.label'));
    mainEl.replaceChildren(chat.header, chat.log, chat.composer);
    renderHeader();
    renderMessages();
    renderComposer();
  }
}

onRender('main', renderMain);
onRender('sidebar', renderSidebar);
onRender('header', () => {
  if (chat.header.isConnected) renderHeader();
});
onRender('messages', () => {
  if (chat.log.isConnected) renderMessages();
});
onRender('composer', renderComposer);

// ---------- theme and language ----------

const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');
function applyTheme(theme: Theme): void {
  const dark = theme === 'dark' || (theme === 'system' && darkQuery.matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  document.documentElement.style.colorScheme = dark ? 'dark' : 'light';
}
darkQuery.addEventListener('change', () => applyTheme(state.settings?.theme ?? 'system'));

function applySettings(s: Settings): void {
  applyTheme(s.theme);
  setLanguage(s.language);
  render('main', 'sidebar');
}
onSettingsApplied(applySettings);
onLanguageChange(() => {
  document.title = t('app.name');
  render('main', 'sidebar');
});

// ---------- keyboard ----------

document.addEventListener('keydown', (e) => {
  const mod = e.ctrlKey || e.metaKey;
  if (mod && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'n') {
    e.preventDefault();
    newChat();
  } else if (mod && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'k') {
    e.preventDefault();
    focusSearch();
  } else if (e.key === 'Escape' && isStreaming()) {
    e.preventDefault();
    void stop();
  }
});

// ---------- file drops from the shell ----------

// Tauri delivers OS file drops with real paths as events (HTML5 drops carry no paths in a webview,
// and with the shell's drag-drop handling on, HTML5 drag events may not fire at all).
const ignoreOutsideShell = () => {
  // Outside the shell (plain browser) there is no event system; drops then use the HTML5 path.
};
void listen('tauri://drag-enter', () => setDropHighlight(state.view === 'chat')).catch(ignoreOutsideShell);
void listen('tauri://drag-leave', () => setDropHighlight(false)).catch(ignoreOutsideShell);
void listen<{ paths: string[] }>('tauri://drag-drop', (ev) => {
  setDropHighlight(false);
  const paths = ev.payload?.paths ?? [];
  if (paths.length === 0) return;
  if (state.view === 'models') void importPath(paths[0]);
  else if (state.view === 'chat') addAttachments(paths);
}).catch(ignoreOutsideShell);

// ---------- start ----------

async function start(): Promise<void> {
  try {
    const settings = await ipc.getSettings();
    state.settings = settings;
    applyTheme(settings.theme);
    setLanguage(settings.language);
  } catch (e) {
    applyTheme('system');
    showError(e);
  }
  try {
    // The settings page takes each number's min, max and step from the backend's own table.
    state.settingsRanges = await ipc.settingsRanges();
  } catch (e) {
    showError(e);
  }
  try {
    // The settings page offers only the devices this build can run a model on here.
    state.devices = await ipc.availableDevices();
  } catch (e) {
    showError(e);
  }
  try {
    // The settings page says whether gated models can be downloaded.
    state.hfToken = await ipc.hfTokenStatus();
  } catch (e) {
    showError(e);
  }
  document.title = t('app.name');
  await Promise.all([refreshModels(), refreshConversations()]);
  render('main', 'sidebar');
  if (state.view === 'chat' && state.installed.length > 0) focusComposer();
  document.documentElement.dataset.ready = '1';
  // The shell may be reloading the last-used model in the background.
  void followModelLoading();
}

void start();
