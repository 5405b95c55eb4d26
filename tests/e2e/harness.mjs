// What every end-to-end test file shares: tauri-driver started on a fresh data folder (every
// launch of the app in the file uses it, so a relaunch sees what the last one stored), its clean
// stop, screenshots, and importing and loading a model through the models page.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './webdriver.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const MODEL = process.env.HEARTH_TEST_MODEL || join(homedir(), '.cache/hearth-test/gemma-3-270m-q4_k_m.gguf');
export const APP = process.env.HEARTH_APP;
const PORT = Number(process.env.TAURI_DRIVER_PORT || 4444);
export const BASE = `http://127.0.0.1:${PORT}`;
const SHOTS = join(ROOT, 'docs/screenshots');
// A 270M model on a busy 2-core machine: replies can take a while, so waits are generous.
export const REPLY_TIMEOUT = 480_000;

/** Starts tauri-driver with HEARTH_DATA_DIR set to a new temporary folder. */
export function startDriver(prefix = 'hearth-e2e-') {
  if (!APP || !existsSync(APP)) throw new Error(`HEARTH_APP must point at the built app binary (got ${APP})`);
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  // WebKitWebDriver on the next port (tauri-driver's default for it, 4445, when PORT is 4444).
  const driver = spawn(process.env.TAURI_DRIVER || 'tauri-driver', ['--port', String(PORT), '--native-port', String(PORT + 1)], {
    env: { ...process.env, HEARTH_DATA_DIR: dataDir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  driver.on('error', (e) => console.error(`tauri-driver: ${e}`));
  return { driver, dataDir };
}

/** Pids of processes (the app) started with this data folder in their environment. */
export function appsOn(dir) {
  const pids = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HEARTH_DATA_DIR=${dir}`)) pids.push(Number(pid));
    } catch { /* gone, or not ours to read */ }
  }
  return pids;
}

/** Stops tauri-driver, ends an app that outlived it, and removes the data folder. */
export async function stopDriver({ driver, dataDir } = {}) {
  // SIGTERM, not SIGKILL: a killed tauri-driver orphans WebKitWebDriver, which holds pipes open.
  if (driver && driver.exitCode === null) {
    driver.kill('SIGTERM');
    await new Promise((r) => { driver.once('exit', r); setTimeout(r, 5000); });
  }
  // Seen once under load: the driver went away before the app's window closed, leaving the app
  // orphaned with the test's stdout open (so the runner never ended). End any such app.
  if (dataDir) {
    // A window closed just now takes a moment to exit (with its WebKit helper processes, which
    // inherit the environment): give it that before calling it left over.
    for (let i = 0; i < 25 && appsOn(dataDir).some((pid) => pid !== process.pid); i++) await sleep(200);
    for (const pid of appsOn(dataDir)) {
      if (pid === process.pid) continue;
      console.error(`e2e: the app (pid ${pid}) outlived its WebDriver session; ending it`);
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
    }
    await sleep(500);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Saves the window as docs/screenshots/app-NAME.png. */
export async function shot(s, name) {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, `app-${name}.png`), await s.screenshotPng());
}

/** Applies theme and language as the settings page would, then reloads so the UI picks them up. */
export async function look(s, theme, language) {
  await s.invoke('set_settings', { patch: { theme, language } });
  await s.exec('location.reload();');
  await sleep(500);
  await s.waitFor('#composer-input, #first-run-cta, .models-page');
}

/**
 * From the first-run screen: imports the GGUF at `path` through the models page's form and loads
 * it with the row's button. Answers the model's status once it is ready.
 */
export async function importAndLoad(s, path) {
  await s.waitFor('#first-run-cta', { timeout: 60000 });
  await s.clickOn('#first-run-cta');
  await s.typeInto('#import-path', path);
  await s.clickOn('#import-btn');
  await s.waitFor('.rows [data-model]', { timeout: 120000 });
  await s.clickOn('.rows [data-model] .row-actions button.btn:not([data-action])');
  await s.waitFor('.rows [data-model] .badge-ok', { timeout: 120000 });
  const model = await s.invoke('current_model');
  if (model.state !== 'ready') throw new Error(`the model is not ready after loading: ${JSON.stringify(model)}`);
  return model;
}

/** Waits until the model (the last-used one, loading again by itself after a relaunch) is ready. English UI. */
export async function waitReady(s, timeout = 120000) {
  const end = Date.now() + timeout;
  let st;
  while ((st = await s.invoke('current_model')).state !== 'ready') {
    if (st.state === 'none' || st.state === 'error' || Date.now() > end) throw new Error(`the model did not load: ${JSON.stringify(st)}`);
    await sleep(200);
  }
  // The window hears of it too: the composer takes messages (its placeholder no longer asks for a model).
  await s.waitFor('#composer-input[placeholder^="Message"]', { timeout: 30000 });
  return st;
}

/**
 * Drops files on the window as the shell reports an OS drop (a WebDriver cannot drag a file from
 * the desktop): Tauri's drag-enter then drag-drop events, with real paths, emitted from the page.
 */
export async function dropFiles(s, paths) {
  const position = { x: 640, y: 800 };
  await s.exec(
    `const emit = (event, payload) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event, payload });
     await emit('tauri://drag-enter', { paths: arguments[0], position: arguments[1] });`,
    [paths, position],
  );
  // The composer shows itself as the drop target while a drag is over the window.
  await s.waitFor('form.composer.dragging', { timeout: 10000 });
  await s.exec(
    `await window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'tauri://drag-drop', payload: { paths: arguments[0], position: arguments[1] } });`,
    [paths, position],
  );
}

/**
 * Records, from now on, every text the streaming reply shows (the page's rendering, seen by a
 * MutationObserver): a reply that streams shows several growing texts before it is done, however
 * fast the model is. `streamed(s)` answers them.
 */
export async function watchStream(s) {
  await s.exec(`
    window.__e2eStream = [];
    window.__e2eObserver?.disconnect();
    const seen = () => {
      const body = document.querySelector('.streaming .msg-body');
      const t = body ? body.textContent.trim() : '';
      const all = window.__e2eStream;
      if (t && all[all.length - 1] !== t) all.push(t);
    };
    window.__e2eObserver = new MutationObserver(seen);
    window.__e2eObserver.observe(document.body, { subtree: true, childList: true, characterData: true });`);
}

export async function streamed(s) {
  return s.exec('window.__e2eObserver?.disconnect(); return window.__e2eStream ?? [];');
}
