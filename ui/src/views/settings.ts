// The settings page. Each field saves on change through set_settings; theme and language apply live.
import { h } from '../dom';
import { errorBlock, errorDetailsEl, errorSentence } from '../errors';
import { t, type Key } from '../i18n';
import * as ipc from '../ipc';
import type { ModelState, Settings } from '../ipc';
import { render, state } from '../state';
import { showError } from '../toast';
import { followModelLoading } from './models';

/** A field's problem: a check made here (a sentence) or the backend's refusal. */
const fieldErrors = new Map<keyof Settings, string | ipc.HearthError>();
let applyHook: (s: Settings) => void = () => {};

/** main.ts registers how settings take effect (theme, language, redraw). */
export function onSettingsApplied(fn: (s: Settings) => void): void {
  applyHook = fn;
}

async function save(key: keyof Settings, value: Settings[keyof Settings], status: HTMLElement): Promise<void> {
  fieldErrors.delete(key);
  try {
    const updated = await ipc.setSettings({ [key]: value } as Partial<Settings>);
    state.settings = updated;
    status.textContent = t('settings.saved');
    applyHook(updated);
    // The shell applies these at once: threads to the loaded model, a new device or context size
    // by reloading it in the background. Show what the model runs on now (and follow a reload).
    if (key === 'threads' || key === 'device' || key === 'contextSize') void refreshModelStatus();
  } catch (e) {
    let err = ipc.toHearthError(e);
    // The backend's message names the field; the sentence needs it as a detail.
    if (err.code === 'invalid_setting' && !err.details.field) err = new ipc.HearthError(err.code, err.message, { ...err.details, field: key });
    fieldErrors.set(key, err);
    showError(err);
    applyHook(state.settings!);
  }
}

async function refreshModelStatus(): Promise<void> {
  // A load this window started (or is already following) reports its own result.
  if (state.model.state === 'loading') return;
  let m: ModelState;
  try {
    m = await ipc.currentModel();
  } catch {
    return;
  }
  // (A load may have started while this call ran.)
  if ((state.model as ModelState).state === 'loading') return;
  state.model = m;
  if (m.state === 'loading') state.loadFraction = Math.max(0, Math.min(1, m.loadFraction ?? 0));
  render('header', 'main', 'composer');
  if (m.state === 'loading') void followModelLoading();
}

/** "In use: CPU · 2 threads" while a model is ready; null otherwise. */
function inUseText(m: ModelState): string | null {
  // A remote model runs on its server: no device or threads here.
  if (m.state === 'ready' && m.remoteUrl) return t('models.remote.runsOn', { url: m.remoteUrl });
  if (m.state !== 'ready' || !m.device) return null;
  const device = t(`device.${m.device}` as Key);
  if (m.threads === null) return t('settings.inUse', { device });
  return m.threads === 1 ? t('settings.inUseOneThread', { device }) : t('settings.inUseThreads', { device, n: m.threads });
}

/** Why the last token save or removal failed; cleared by the next try. */
let tokenError: ipc.HearthError | null = null;

/**
 * The Hugging Face read token for gated models. The input is never filled from the backend (the
 * token never comes back to the window) and is emptied once the token is saved; the section
 * updates in place so its status line is announced and focus stays put.
 */
function hfTokenSection(): HTMLElement {
  const input = h('input', { type: 'password', id: 'set-hfToken', class: 'text-input', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'hf-token-status hf-token-note' });
  const statusEl = h('p', { class: 'field-note', id: 'hf-token-status', role: 'status', 'aria-live': 'polite' });
  const errorSlot = h('div', { id: 'hf-token-error' });
  const saveBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'hf-token-save' }, t('settings.hfToken.save'));
  const removeBtn = h('button', { type: 'button', class: 'btn btn-ghost', id: 'hf-token-remove' }, t('settings.hfToken.remove'));

  const show = () => {
    statusEl.textContent = state.hfToken === null ? '' : t(state.hfToken ? 'settings.hfToken.set' : 'settings.hfToken.none');
    removeBtn.hidden = state.hfToken !== true;
    errorSlot.replaceChildren(...(tokenError ? [errorBlock(tokenError, { class: 'field-error error-block' })] : []));
    if (tokenError) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };

  const submit = async (token: string) => {
    tokenError = null;
    saveBtn.disabled = removeBtn.disabled = true;
    try {
      state.hfToken = await ipc.setHfToken(token);
      input.value = '';
    } catch (e) {
      tokenError = ipc.toHearthError(e);
      showError(tokenError);
    } finally {
      saveBtn.disabled = removeBtn.disabled = false;
    }
    const removed = token === '' && state.hfToken !== true;
    show();
    // The Remove button just disappeared: keep the keyboard in the section.
    if (removed && document.activeElement === document.body) input.focus();
  };

  const form = h('form', { class: 'token-form', 'aria-labelledby': 'set-hftoken-heading' },
    h('label', { for: 'set-hfToken', class: 'field-label' }, t('settings.hfToken.label')),
    h('div', { class: 'inline' }, input, saveBtn, removeBtn),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // An empty Save does nothing (removing is the Remove button's job).
    const token = input.value.trim();
    if (token === '') return void input.focus();
    void submit(token);
  });
  removeBtn.addEventListener('click', () => void submit(''));
  show();

  return h(
    'section',
    { class: 'page-section', 'aria-labelledby': 'set-hftoken-heading' },
    h('h2', { id: 'set-hftoken-heading' }, t('settings.hfToken')),
    form,
    statusEl,
    h('p', { class: 'field-note small muted', id: 'hf-token-note' }, t('settings.hfToken.note')),
    errorSlot,
  );
}

type NumberKey = 'temperature' | 'topP' | 'topK' | 'minP' | 'repeatPenalty' | 'seed' | 'contextSize' | 'threads';

export function settingsPage(): HTMLElement {
  const s = state.settings;
  const status = h('p', { class: 'save-status small muted', role: 'status', 'aria-live': 'polite' });
  if (!s) return h('div', { class: 'page' }, h('h1', { class: 'page-title' }, t('settings.title')));

  const errorFor = (key: keyof Settings) => {
    const e = fieldErrors.get(key);
    if (e === undefined) return null;
    if (typeof e === 'string') return h('p', { class: 'field-error', id: `err-${key}` }, e);
    return h('div', { class: 'field-error error-block', 'data-error-code': e.code }, h('p', { class: 'error-sentence', id: `err-${key}` }, errorSentence(e)), errorDetailsEl(e));
  };

  const numberField = (key: NumberKey, label: Key) => {
    const id = `set-${key}`;
    // Limits come from the backend (settings_ranges), the same table its validation uses.
    const range = state.settingsRanges.find((r) => r.field === key);
    const opts = { step: range ? String(range.step) : 'any', min: range?.min, max: range?.max, nullable: range?.nullable ?? false };
    const input = h('input', { type: 'number', id, class: 'text-input', step: opts.step, min: opts.min ?? null, max: opts.max ?? null, value: s[key] === null ? '' : String(s[key]), 'aria-invalid': fieldErrors.has(key) ? 'true' : null, 'aria-describedby': fieldErrors.has(key) ? `err-${key}` : null });
    input.addEventListener('change', () => {
      const raw = input.value.trim();
      if (raw === '' && opts.nullable) return void save(key, null, status);
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n)) {
        fieldErrors.set(key, t('settings.invalid'));
        applyHook(state.settings!);
        return;
      }
      void save(key, n, status);
    });
    return h('div', { class: 'field' }, h('label', { for: id, class: 'field-label' }, t(label)), input, errorFor(key));
  };

  const selectField = <K extends 'theme' | 'language'>(key: K, label: Key, options: [Settings[K], string][]) => {
    const id = `set-${key}`;
    const sel = h('select', { id, class: 'text-input' }, options.map(([v, text]) => h('option', { value: v, selected: s[key] === v }, text)));
    sel.addEventListener('change', () => void save(key, sel.value as Settings[K], status));
    return h('div', { class: 'field' }, h('label', { for: id, class: 'field-label' }, t(label)), sel, errorFor(key));
  };

  // Only what this build can run on here; a stored 'gpu' without a GPU stays chosen but is marked.
  const deviceField = () => {
    const id = 'set-device';
    const gpuHere = state.devices === null || state.devices.some((d) => d !== 'cpu');
    const options: [Settings['device'], string, boolean][] = [['auto', t('settings.device.auto'), false], ['cpu', t('settings.device.cpu'), false]];
    if (gpuHere) options.push(['gpu', t('settings.device.gpu'), false]);
    else if (s.device === 'gpu') options.push(['gpu', t('settings.device.gpuUnavailable'), true]);
    const note = !gpuHere && s.device === 'gpu' ? h('p', { class: 'field-note small muted', id: 'device-note' }, t('settings.device.noGpu')) : null;
    const inUse = inUseText(state.model);
    const inUseEl = inUse === null ? null : h('p', { class: 'field-note small muted', id: 'device-in-use' }, inUse);
    const describedBy = [fieldErrors.has('device') ? 'err-device' : null, note ? 'device-note' : null, inUseEl ? 'device-in-use' : null].filter(Boolean).join(' ');
    const sel = h('select', { id, class: 'text-input', 'aria-describedby': describedBy || null }, options.map(([v, text, disabled]) => h('option', { value: v, selected: s.device === v, disabled }, text)));
    sel.addEventListener('change', () => void save('device', sel.value as Settings['device'], status));
    return h('div', { class: 'field' }, h('label', { for: id, class: 'field-label' }, t('settings.device')), sel, note, inUseEl, errorFor('device'));
  };

  // On/off settings: a checkbox that saves on change, with a note on what it costs.
  const checkField = (key: 'panScan', label: Key, note: Key) => {
    const id = `set-${key}`;
    const describedBy = [`${id}-note`, fieldErrors.has(key) ? `err-${key}` : null].filter(Boolean).join(' ');
    const box = h('input', { type: 'checkbox', id, checked: s[key], 'aria-describedby': describedBy });
    box.addEventListener('change', () => void save(key, box.checked, status));
    return h('div', { class: 'field' },
      h('div', { class: 'field-check' }, box, h('label', { for: id }, t(label))),
      h('p', { class: 'field-note small muted', id: `${id}-note` }, t(note)),
      errorFor(key),
    );
  };

  const prompt = h('textarea', { id: 'set-systemPrompt', class: 'text-input', rows: 4 });
  prompt.value = s.systemPrompt;
  prompt.addEventListener('change', () => void save('systemPrompt', prompt.value, status));

  return h(
    'div',
    { class: 'page settings-page' },
    h('h1', { class: 'page-title' }, t('settings.title')),
    h(
      'section',
      { class: 'page-section', 'aria-labelledby': 'set-appearance' },
      h('h2', { id: 'set-appearance' }, t('settings.appearance')),
      h('div', { class: 'grid' },
        selectField('theme', 'settings.theme', [['system', t('settings.theme.system')], ['light', t('settings.theme.light')], ['dark', t('settings.theme.dark')]]),
        // Language names are shown in their own language so either can always be found.
        selectField('language', 'settings.language', [['ko', '한국어'], ['en', 'English']]),
      ),
    ),
    h(
      'section',
      { class: 'page-section', 'aria-labelledby': 'set-generation' },
      h('h2', { id: 'set-generation' }, t('settings.generation')),
      h('div', { class: 'field' }, h('label', { for: 'set-systemPrompt', class: 'field-label' }, t('settings.systemPrompt')), prompt, errorFor('systemPrompt')),
      h('div', { class: 'grid' },
        numberField('temperature', 'settings.temperature'),
        numberField('topP', 'settings.topP'),
        numberField('topK', 'settings.topK'),
        numberField('minP', 'settings.minP'),
        numberField('repeatPenalty', 'settings.repeatPenalty'),
        numberField('seed', 'settings.seed'),
      ),
      checkField('panScan', 'settings.panScan', 'settings.panScan.note'),
    ),
    h(
      'section',
      { class: 'page-section', 'aria-labelledby': 'set-performance' },
      h('h2', { id: 'set-performance' }, t('settings.performance')),
      h('div', { class: 'grid' },
        numberField('contextSize', 'settings.contextSize'),
        numberField('threads', 'settings.threads'),
        deviceField(),
      ),
    ),
    hfTokenSection(),
    localServerSection(),
    status,
  );
}

// ---------- local API server ----------

/** What local_server_status answered; null until it does. */
let serverStatus: ipc.LocalServerStatus | null = null;
/** The last refusal of set_local_server (e.g. port_in_use), or a check made here. */
let serverError: string | ipc.HearthError | null = null;
let serverAsked = false;

async function refreshServer(): Promise<void> {
  try {
    serverStatus = await ipc.localServerStatus();
  } catch (e) {
    showError(e);
  }
  if (state.view === 'settings') render('main');
}

async function applyServer(next: ipc.LocalServerSettings): Promise<void> {
  serverError = null;
  try {
    serverStatus = await ipc.setLocalServer(next);
  } catch (e) {
    serverError = ipc.toHearthError(e);
    // The shell stored nothing: show what is in effect.
    try {
      serverStatus = await ipc.localServerStatus();
    } catch {
      /* keep the last known status */
    }
  }
  render('main');
}

function copyButton(id: string, label: string, text: string): HTMLElement {
  const btn = h('button', { type: 'button', class: 'btn btn-ghost', id, 'aria-label': label }, t('settings.server.copy'));
  btn.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text).then(() => { btn.textContent = t('settings.server.copied'); }, showError);
  });
  return btn;
}

function localServerSection(): HTMLElement {
  if (!serverAsked) {
    serverAsked = true;
    void refreshServer();
  }
  const st = serverStatus;
  const cur: ipc.LocalServerSettings = st?.settings ?? { enabled: false, port: 11435, store: false, requireKey: false };
  const sw = h('input', { type: 'checkbox', id: 'set-server', role: 'switch', checked: cur.enabled, disabled: st === null, 'aria-checked': cur.enabled ? 'true' : 'false' });
  const port = h('input', { type: 'number', id: 'set-server-port', class: 'text-input', min: 1, max: 65535, step: 1, value: String(cur.port), 'aria-invalid': serverError ? 'true' : null, 'aria-describedby': serverError ? 'server-error' : null });
  const store = h('input', { type: 'checkbox', id: 'set-server-store', checked: cur.store, disabled: st === null });
  const requireKey = h('input', { type: 'checkbox', id: 'set-server-requireKey', checked: cur.requireKey, disabled: st === null });
  const next = (patch: Partial<ipc.LocalServerSettings>): ipc.LocalServerSettings | null => {
    const p = Number(port.value.trim());
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      serverError = t('settings.server.badPort');
      render('main');
      return null;
    }
    return { ...cur, port: p, ...patch };
  };
  sw.addEventListener('change', () => { const n = next({ enabled: sw.checked }); if (n) void applyServer(n); });
  // A new port or option applies at once while it runs (the shell restarts it); off, it is stored with the next switch-on.
  port.addEventListener('change', () => { const n = next({}); if (n && cur.enabled) void applyServer(n); });
  store.addEventListener('change', () => { const n = next({ store: store.checked }); if (n) void applyServer(n); });
  requireKey.addEventListener('change', () => { const n = next({ requireKey: requireKey.checked }); if (n) void applyServer(n); });
  const check = (input: HTMLInputElement, label: string) => h('div', { class: 'field field-check' }, input, h('label', { for: input.id }, label));
  const running = st?.url ?? null;
  const shownError = serverError ?? st?.error ?? null;
  return h(
    'section',
    { class: 'page-section', 'aria-labelledby': 'set-server-heading', id: 'server-section' },
    h('h2', { id: 'set-server-heading' }, t('settings.server')),
    h('p', { class: 'field-note small muted' }, t('settings.server.note')),
    check(sw, t('settings.server.switch')),
    h('div', { class: 'grid' }, h('div', { class: 'field' }, h('label', { for: 'set-server-port', class: 'field-label' }, t('settings.server.port')), port)),
    check(store, t('settings.server.store')),
    check(requireKey, t('settings.server.requireKey')),
    h('p', { class: 'small', id: 'server-status', role: 'status' }, running ? t('settings.server.running', { url: running }) : t('settings.server.off')),
    running ? h('div', { class: 'field' }, h('span', { class: 'field-label' }, t('settings.server.url')), h('div', { class: 'inline' }, h('code', { id: 'server-url' }, running), copyButton('server-copy-url', t('settings.server.copyUrl'), running))) : null,
    st?.apiKey ? h('div', { class: 'field' }, h('span', { class: 'field-label' }, t('settings.server.key')), h('div', { class: 'inline' }, h('code', { id: 'server-key' }, st.apiKey), copyButton('server-copy-key', t('settings.server.copyKey'), st.apiKey))) : null,
    shownError === null ? null
      : typeof shownError === 'string' ? h('p', { class: 'field-error', id: 'server-error', role: 'alert' }, shownError)
      : errorBlock(shownError, { class: 'error-block field-error', id: 'server-error', role: 'alert' }),
  );
}
