// The models page (installed models, catalog with fit badges and downloads, GGUF import),
// the first-run screen, and model loading with progress.
import { basename, h, icon } from '../dom';
import { formatBytes, formatDuration, formatNumber, formatParams, t } from '../i18n';
import * as ipc from '../ipc';
import { Channel, type CatalogEntry, type DownloadEvent, type InstalledModel, type LoadEvent, type ModelState, type RemoteModelInfo } from '../ipc';
import { errorBlock } from '../errors';
import { render, state } from '../state';
import { showError, showToast } from '../toast';
import { recountContext } from './chat';

let pathInput: HTMLInputElement | null = null;
/** A check made here (a plain sentence) or the backend's refusal (shown as its translated sentence). */
let importError: string | ipc.HearthError | null = null;
/** The installed model whose Remove button is asking for confirmation (inline, no native dialog). */
let confirmingRemove: string | null = null;

export async function refreshModels(): Promise<void> {
  try {
    const [installed, catalog, model, remote] = await Promise.all([ipc.listInstalledModels(), ipc.modelCatalog(), ipc.currentModel(), ipc.listRemoteModels()]);
    state.installed = installed;
    state.remote = remote;
    state.catalog = catalog;
    if (state.model.state !== 'loading') state.model = model;
    for (const c of catalog) {
      if (c.download && !state.downloads.has(c.id)) state.downloads.set(c.id, { state: c.download.state, bytes: c.download.bytes, total: c.download.total, rate: 0, eta: null });
    }
  } catch (e) {
    showError(e);
  }
  render('main', 'header');
}

/** True while this window's own load_model call runs (it gets its progress on a channel). */
let loadingHere = false;
let following = false;

/**
 * The shell can be loading a model this window did not ask for: at start-up it reloads the
 * last-used model in the background. While current_model says `loading`, ask again until it
 * settles, then show the result.
 */
export async function followModelLoading(intervalMs = 400): Promise<void> {
  if (following) return;
  following = true;
  try {
    while (state.model.state === 'loading' && !loadingHere) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      let m: ModelState;
      try {
        m = await ipc.currentModel();
      } catch {
        return;
      }
      if (loadingHere) return;
      state.model = m;
      if (m.state === 'loading') {
        state.loadFraction = Math.max(0, Math.min(1, m.loadFraction ?? 0));
        render('header');
      } else {
        if (m.state === 'error' && m.error) showError(m.error);
        render('header', 'main', 'composer');
        if (m.state === 'ready') void recountContext();
      }
    }
  } finally {
    following = false;
  }
}

export async function loadModelById(id: string): Promise<void> {
  loadingHere = true;
  try {
    await loadHere(id);
  } finally {
    loadingHere = false;
  }
}

async function loadHere(id: string): Promise<void> {
  const im = state.installed.find((m) => m.id === id) ?? state.remote.find((r) => r.name === id);
  state.model = { state: 'loading', modelId: id, name: im?.name ?? id, contextSize: null, loadFraction: 0, device: null, threads: null, readsImages: false, error: null };
  state.loadFraction = 0;
  render('header', 'main');
  const ch = new Channel<LoadEvent>();
  // A failed load ends its channel with an error event and rejects the call with the same error:
  // show it once.
  let streamError: ipc.HearthError | null = null;
  ch.onmessage = (ev) => {
    if (ev.kind === 'progress') {
      state.loadFraction = Math.max(0, Math.min(1, ev.fraction));
      render('header');
      if (state.view === 'models') render('main');
    } else if (ev.kind === 'error') {
      streamError = ipc.toHearthError(ev);
    }
  };
  let failure: ipc.HearthError | null = null;
  try {
    state.model = await ipc.loadModel(id, ch);
    if (state.model.state === 'error') failure = state.model.error ? ipc.toHearthError(state.model.error) : streamError;
  } catch (e) {
    failure = ipc.toHearthError(e);
    try {
      state.model = await ipc.currentModel();
    } catch {
      state.model = { state: 'error', modelId: id, name: im?.name ?? id, contextSize: null, loadFraction: null, device: null, threads: null, readsImages: false, error: failure };
    }
  }
  failure ??= streamError;
  if (failure) {
    // The Models page shows why next to the model; keep it even if current_model forgot.
    if (state.model.state === 'error' && state.model.modelId === id && !state.model.error) state.model = { ...state.model, error: failure };
    showError(failure);
  }
  render('header', 'main', 'composer');
  if (state.model.state === 'ready') void recountContext();
}

// ---------- first run ----------

export function firstRunEl(): HTMLElement {
  return h(
    'section',
    { class: 'first-run', 'aria-labelledby': 'first-run-title' },
    h('div', { class: 'first-run-mark', 'aria-hidden': 'true' }),
    h('h1', { id: 'first-run-title' }, t('firstrun.title')),
    h('p', { class: 'muted' }, t('firstrun.body')),
    h('button', { type: 'button', class: 'btn btn-primary btn-large', id: 'first-run-cta', onclick: () => { state.view = 'models'; render('main', 'sidebar'); } }, icon('download'), t('firstrun.cta')),
  );
}

// ---------- models page ----------

export function modelsPage(): HTMLElement {
  return h(
    'div',
    { class: 'page models-page' },
    h('h1', { class: 'page-title' }, t('models.title')),
    h('section', { 'aria-labelledby': 'installed-h', class: 'page-section' }, h('h2', { id: 'installed-h' }, t('models.installed')), installedList()),
    h('section', { 'aria-labelledby': 'catalog-h', class: 'page-section' }, h('h2', { id: 'catalog-h' }, t('models.catalog')), h('ul', { class: 'cards' }, state.catalog.map(catalogCard))),
    remoteSection(),
    importSection(),
  );
}

// ---------- remote models ----------

/** The add form's inputs, kept for the page's lifetime so redraws never drop what is typed. */
let remoteInputs: { name: HTMLInputElement; url: HTMLInputElement; model: HTMLInputElement; key: HTMLInputElement } | null = null;
/** A check made here (a sentence) or the backend's refusal of the add form. */
let remoteError: string | ipc.HearthError | null = null;
let confirmingRemoteRemove: string | null = null;

function remoteSection(): HTMLElement {
  remoteInputs ??= {
    name: h('input', { type: 'text', id: 'remote-name', class: 'text-input', placeholder: 'gemma-27b-server', spellcheck: 'false', autocomplete: 'off' }),
    url: h('input', { type: 'url', id: 'remote-url', class: 'text-input', placeholder: 'http://192.168.1.20:8080', spellcheck: 'false', autocomplete: 'off' }),
    model: h('input', { type: 'text', id: 'remote-model', class: 'text-input', placeholder: 'gemma-3-27b-it', spellcheck: 'false', autocomplete: 'off' }),
    key: h('input', { type: 'password', id: 'remote-key', class: 'text-input', autocomplete: 'off', 'aria-describedby': 'remote-key-note' }),
  };
  const f = remoteInputs;
  const field = (input: HTMLInputElement, label: string) => h('div', { class: 'field' }, h('label', { for: input.id, class: 'field-label' }, label), input);
  return h(
    'section',
    { class: 'page-section', 'aria-labelledby': 'remote-h', id: 'remote-section' },
    h('h2', { id: 'remote-h' }, t('models.remote')),
    h('p', { class: 'muted small' }, t('models.remote.note')),
    state.remote.length === 0 ? h('p', { class: 'muted', id: 'remote-none' }, t('models.remote.none')) : h('ul', { class: 'rows', id: 'remote-list' }, state.remote.map(remoteRow)),
    h(
      'form',
      { class: 'remote-form', id: 'remote-form', onsubmit: (e: Event) => { e.preventDefault(); void addRemote(); } },
      h('div', { class: 'grid' }, field(f.name, t('models.remote.name')), field(f.url, t('models.remote.url')), field(f.model, t('models.remote.model')), field(f.key, t('models.remote.key'))),
      h('p', { class: 'field-note small muted', id: 'remote-key-note' }, t('models.remote.keyNote')),
      remoteError === null ? null
        : typeof remoteError === 'string' ? h('p', { class: 'field-error', id: 'remote-error', role: 'alert' }, remoteError)
        : errorBlock(remoteError, { class: 'error-block field-error', id: 'remote-error', role: 'alert' }),
      h('button', { type: 'submit', class: 'btn btn-primary', id: 'remote-add' }, t('models.remote.add')),
    ),
  );
}

function remoteRow(r: RemoteModelInfo): HTMLElement {
  const m = state.model;
  const loaded = m.modelId === r.name && m.state === 'ready';
  const loading = m.modelId === r.name && m.state === 'loading';
  const failed = m.modelId === r.name && m.state === 'error' ? m.error : null;
  const check = state.remoteChecks.get(r.name);
  let checkEl: HTMLElement | null = null;
  if (check === 'checking') checkEl = h('p', { class: 'small muted remote-check', role: 'status' }, t('models.remote.checking'));
  else if (check && check.error) checkEl = errorBlock(check.error, { class: 'error-block remote-check', role: 'status' });
  else if (check) checkEl = h('p', { class: 'small remote-check', role: 'status', 'data-ok': 'true' }, check.models.length ? t('models.remote.answers', { models: check.models.join(', ') }) : t('models.remote.answersNone'));
  const label = `${t('models.remote.use')}: ${r.name}`;
  return h(
    'li',
    { class: 'row', 'data-remote': r.name },
    h('div', { class: 'row-main' },
      h('strong', null, r.name),
      h('span', { class: 'muted small path', title: r.url }, r.url),
      h('span', { class: 'muted small' }, [r.model ?? t('models.remote.firstModel'), r.hasKey ? ` · ${t('models.remote.hasKey')}` : ''].join('')),
      loaded ? h('span', { class: 'small', 'data-runs-on': r.url }, t('models.remote.runsOn', { url: m.remoteUrl ?? r.url })) : null,
      checkEl,
      failed ? h('div', { class: 'row-error' }, h('span', { class: 'badge badge-error' }, t('picker.error')), errorBlock(failed)) : null),
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'check', 'aria-label': `${t('models.remote.check')}: ${r.name}`, disabled: check === 'checking', onclick: () => void checkRemote(r.name) }, t('models.remote.check')),
      loaded
        ? h('span', { class: 'badge badge-ok' }, t('models.loaded'))
        : h('button', { type: 'button', class: 'btn', 'data-action': 'use', 'aria-label': label, disabled: loading || m.state === 'loading', onclick: () => void loadModelById(r.name) }, t('models.remote.use')),
      confirmingRemoteRemove === r.name
        ? h('span', { class: 'confirm', role: 'group', 'aria-label': t('models.remote.removeConfirm', { name: r.name }) },
            h('span', { class: 'small' }, t('models.remote.removeConfirm', { name: r.name })),
            h('button', { type: 'button', class: 'btn btn-danger', 'data-action': 'confirm-remove', onclick: () => void removeRemote(r.name) }, t('models.remove')),
            h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'cancel-remove', onclick: () => { confirmingRemoteRemove = null; render('main'); } }, t('models.cancel')))
        : h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'remove', 'aria-label': `${t('models.remove')}: ${r.name}`, onclick: () => { confirmingRemoteRemove = r.name; render('main'); (document.querySelector(`[data-remote="${CSS.escape(r.name)}"] [data-action="cancel-remove"]`) as HTMLElement | null)?.focus(); } }, t('models.remove')),
    ),
  );
}

async function addRemote(): Promise<void> {
  const f = remoteInputs;
  if (!f) return;
  const name = f.name.value.trim();
  const url = f.url.value.trim();
  remoteError = name === '' ? t('models.remote.emptyName') : url === '' ? t('models.remote.emptyUrl') : null;
  if (remoteError) {
    render('main');
    (name === '' ? f.name : f.url).focus();
    return;
  }
  try {
    const added = await ipc.addRemoteModel({ name, url, model: f.model.value.trim() || null, apiKey: f.key.value.trim() || null });
    // The key went to the shell once; it is not kept in the page.
    for (const input of [f.name, f.url, f.model, f.key]) input.value = '';
    showToast(t('models.remote.added', { name: added.name }), null);
    await refreshModels();
    await checkRemote(added.name);
  } catch (e) {
    remoteError = ipc.toHearthError(e);
    render('main');
  }
}

async function checkRemote(name: string): Promise<void> {
  state.remoteChecks.set(name, 'checking');
  render('main');
  try {
    state.remoteChecks.set(name, await ipc.checkRemoteModel(name));
  } catch (e) {
    state.remoteChecks.delete(name);
    showError(e);
  }
  render('main');
}

async function removeRemote(name: string): Promise<void> {
  confirmingRemoteRemove = null;
  try {
    await ipc.removeRemoteModel(name);
    state.remoteChecks.delete(name);
  } catch (e) {
    showError(e);
  }
  await refreshModels();
}

function installedList(): HTMLElement {
  if (state.installed.length === 0) return h('p', { class: 'muted' }, t('models.noneInstalled'));
  return h(
    'ul',
    { class: 'rows' },
    state.installed.map((m: InstalledModel) => {
      const loaded = state.model.modelId === m.id && state.model.state === 'ready';
      const loading = state.model.modelId === m.id && state.model.state === 'loading';
      const failed = state.model.modelId === m.id && state.model.state === 'error' ? state.model.error : null;
      return h(
        'li',
        { class: 'row', 'data-model': m.id },
        h('div', { class: 'row-main' }, h('strong', null, m.name), h('span', { class: 'muted small' }, `${m.quant} · ${formatBytes(m.sizeBytes)} · ${t('models.context', { n: formatNumber(m.contextLength) })}`), h('span', { class: 'muted small path', title: m.path }, m.path),
          failed ? h('div', { class: 'row-error' }, h('span', { class: 'badge badge-error' }, t('picker.error')), errorBlock(failed)) : null),
        loading ? h('progress', { max: 1, value: state.loadFraction, 'aria-label': t('picker.loading', { name: m.name, percent: Math.round(state.loadFraction * 100) }) }) : null,
        h('div', { class: 'row-actions' },
          loaded
            ? h('span', { class: 'badge badge-ok' }, t('models.loaded'))
            : h('button', { type: 'button', class: 'btn', disabled: loading, onclick: () => void loadModelById(m.id) }, t('models.load')),
          confirmingRemove === m.id
            ? h('span', { class: 'confirm', role: 'group', 'aria-label': t('models.removeConfirm', { name: m.name }) },
                h('span', { class: 'small' }, t('models.removeConfirm', { name: m.name })),
                h('button', { type: 'button', class: 'btn btn-danger', 'data-action': 'confirm-remove', onclick: () => void remove(m) }, t('models.remove')),
                h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'cancel-remove', onclick: () => { confirmingRemove = null; render('main'); } }, t('models.cancel')))
            : h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'remove', 'aria-label': `${t('models.remove')}: ${m.name}`, onclick: () => { confirmingRemove = m.id; render('main'); (document.querySelector(`[data-model="${CSS.escape(m.id)}"] [data-action="cancel-remove"]`) as HTMLElement | null)?.focus(); } }, t('models.remove')),
        ),
      );
    }),
  );
}

async function remove(m: InstalledModel): Promise<void> {
  confirmingRemove = null;
  try {
    await ipc.removeModel(m.id);
  } catch (e) {
    showError(e);
  }
  await refreshModels();
}

function catalogCard(c: CatalogEntry): HTMLElement {
  const dl = state.downloads.get(c.id);
  const fitLabel = t(`models.fit.${c.fit}` as 'models.fit.fits');
  let controls: Node[];
  if (c.installed) controls = [h('span', { class: 'badge badge-ok' }, t('models.installedBadge'))];
  else if (dl?.state === 'running') {
    controls = [
      h('progress', { max: dl.total || 1, value: dl.bytes, 'aria-label': t('models.progressLabel', { name: c.name }) }),
      h('span', { class: 'small muted progress-text' }, t('models.progress', { done: formatBytes(dl.bytes), total: formatBytes(dl.total), rate: formatBytes(dl.rate), eta: formatDuration(dl.eta) })),
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'cancel', 'aria-label': `${t('models.cancel')}: ${c.name}`, onclick: () => void ipc.cancelDownload(c.id).catch(showError) }, t('models.cancel')),
    ];
  } else if (dl?.state === 'paused') {
    controls = [
      h('progress', { max: dl.total || 1, value: dl.bytes, 'aria-label': t('models.progressLabel', { name: c.name }) }),
      h('span', { class: 'small muted progress-text' }, t('models.paused', { done: formatBytes(dl.bytes), total: formatBytes(dl.total) })),
      h('button', { type: 'button', class: 'btn', 'data-action': 'resume', 'aria-label': `${t('models.resume')}: ${c.name}`, onclick: () => void startDownload(c, true) }, t('models.resume')),
    ];
  } else {
    controls = [
      dl?.state === 'failed' ? h('span', { class: 'badge badge-error' }, t('models.failed')) : null,
      h('button', { type: 'button', class: c.fit === 'too_big' ? 'btn' : 'btn btn-primary', 'data-action': 'download', 'aria-label': `${dl?.state === 'failed' ? t('models.retry') : t('models.download')}: ${c.name}`, onclick: () => void startDownload(c, dl?.state === 'failed') }, icon('download'), dl?.state === 'failed' ? t('models.retry') : t('models.download')),
    ].filter((x): x is HTMLElement => x !== null);
  }
  return h(
    'li',
    { class: 'card', 'data-model': c.id },
    h('div', { class: 'card-head' }, h('h3', null, c.name), h('span', { class: `fit fit-${c.fit}`, 'aria-label': fitLabel, title: fitLabel }, fitLabel)),
    h('p', { class: 'muted small' }, `${c.family} · ${c.quant}`),
    h('p', { class: 'card-desc' }, t('models.desc', { params: formatParams(c.params), context: formatNumber(c.contextLength) })),
    h('p', { class: 'small' }, `${t('models.size', { size: formatBytes(c.sizeBytes) })} · ${t('models.needs', { required: formatBytes(c.requiredBytes), available: formatBytes(c.availableBytes) })}`),
    h('div', { class: 'card-controls' }, controls),
    dl?.state === 'failed' && dl.error ? errorBlock(dl.error, { class: 'error-block card-error' }) : null,
  );
}

async function startDownload(c: CatalogEntry, resume: boolean): Promise<void> {
  const prev = state.downloads.get(c.id);
  state.downloads.set(c.id, { state: 'running', bytes: prev?.bytes ?? 0, total: prev?.total ?? c.sizeBytes, rate: 0, eta: null });
  render('main');
  const ch = new Channel<DownloadEvent>();
  ch.onmessage = (ev) => {
    if (ev.kind === 'progress') {
      state.downloads.set(c.id, { state: 'running', bytes: ev.bytes, total: ev.total, rate: ev.rate, eta: ev.eta });
      if (state.view === 'models') render('main');
    } else if (ev.kind === 'cancelled') {
      const d = state.downloads.get(c.id);
      state.downloads.set(c.id, { state: 'paused', bytes: d?.bytes ?? 0, total: d?.total ?? c.sizeBytes, rate: 0, eta: null });
      render('main');
    } else if (ev.kind === 'done') {
      state.downloads.delete(c.id);
      void refreshModels();
    } else if (ev.kind === 'error') {
      failed(ipc.toHearthError(ev));
    }
  };
  const failed = (err: ipc.HearthError) => {
    const d = state.downloads.get(c.id);
    state.downloads.set(c.id, { state: 'failed', bytes: d?.bytes ?? 0, total: d?.total ?? c.sizeBytes, rate: 0, eta: null, error: err });
    showError(err);
    render('main');
  };
  try {
    if (resume) await ipc.resumeDownload(c.id, ch);
    else await ipc.downloadModel(c.id, ch);
  } catch (e) {
    failed(ipc.toHearthError(e));
  }
}

function importSection(): HTMLElement {
  // One input for the page's lifetime, so progress redraws never drop what the user is typing.
  pathInput ??= h('input', { type: 'text', id: 'import-path', class: 'text-input', placeholder: '/home/me/models/gemma-3-4b-it-Q4_K_M.gguf', spellcheck: 'false' });
  if (importError) {
    pathInput.setAttribute('aria-describedby', 'import-error');
    pathInput.setAttribute('aria-invalid', 'true');
  } else {
    pathInput.removeAttribute('aria-describedby');
    pathInput.removeAttribute('aria-invalid');
  }
  const drop = h('div', { class: 'drop-zone', id: 'import-drop' }, icon('file'), t('models.dropHere'));
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('dragging');
    const f = (e as DragEvent).dataTransfer?.files[0] as (File & { path?: string }) | undefined;
    if (f) void importPath(f.path || f.name);
  });
  return h(
    'section',
    { class: 'page-section', 'aria-labelledby': 'import-h' },
    h('h2', { id: 'import-h' }, t('models.import')),
    h(
      'form',
      { class: 'import-form', onsubmit: (e: Event) => { e.preventDefault(); void importPath(pathInput?.value ?? ''); } },
      h('label', { for: 'import-path', class: 'field-label' }, t('models.importPath')),
      h('div', { class: 'inline' }, pathInput, h('button', { type: 'submit', class: 'btn btn-primary', id: 'import-btn' }, t('models.importButton')), h('button', { type: 'button', class: 'btn', id: 'browse-btn', onclick: () => void browse() }, t('models.browse'))),
      importError === null ? null
        : typeof importError === 'string' ? h('p', { class: 'field-error', id: 'import-error', role: 'alert' }, importError)
        : errorBlock(importError, { class: 'error-block field-error', id: 'import-error', role: 'alert' }),
      drop,
    ),
  );
}

async function browse(): Promise<void> {
  try {
    const path = await ipc.pickModelFile();
    if (path) await importPath(path);
  } catch (e) {
    showError(e);
  }
}

/** Imports a local GGUF by path (from the text field, the file dialog or a drop). */
export async function importPath(raw: string): Promise<void> {
  const path = raw.trim();
  importError = null;
  if (path === '') importError = t('models.emptyPath');
  else if (!/\.gguf$/i.test(path)) importError = t('models.notGguf');
  if (importError) {
    render('main');
    document.getElementById('import-path')?.focus();
    return;
  }
  try {
    const m = await ipc.importModel(path);
    showToast(t('models.imported', { name: m.name || basename(path) }), null);
    if (pathInput) pathInput.value = '';
  } catch (e) {
    importError = ipc.toHearthError(e);
  }
  await refreshModels();
}
