// Start-up time of a Tauri app, measured from outside through tauri-driver: from the moment the
// WebDriver session is requested (which launches the binary) until SELECTOR is in the page, i.e.
// the window shows the UI a person can type into. WebDriver's own round trips are included, so
// the figure errs on the slow side. A measurement, not a test: it prints JSON and asserts nothing.
//
//   node tests/e2e/startup.mjs --app BIN --selector CSS [--runs 5] [--model GGUF]
//
// With --model, a first launch imports and loads that model through the app's own commands (so the
// app remembers it as the last used), and every measured launch then also reports when the model,
// loading in the background, became ready. Needs tauri-driver on PATH and a display (xvfb-run);
// HEARTH_DATA_DIR is set to a fresh temporary folder. scripts/bench-app runs it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Session, sleep } from './webdriver.mjs';

const { values: opt } = parseArgs({
  options: {
    app: { type: 'string' },
    selector: { type: 'string' },
    runs: { type: 'string', default: '5' },
    model: { type: 'string' },
    port: { type: 'string', default: '4454' },
  },
});
if (!opt.app || !opt.selector) {
  console.error('usage: startup.mjs --app BIN --selector CSS [--runs N] [--model GGUF]');
  process.exit(2);
}
const BASE = `http://127.0.0.1:${opt.port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'hearth-startup-'));
// WebKitWebDriver gets the next port (tauri-driver's default, 4445, may be an e2e run's).
const driver = spawn(process.env.TAURI_DRIVER || 'tauri-driver', ['--port', opt.port, '--native-port', String(Number(opt.port) + 1)], {
  env: { ...process.env, HEARTH_DATA_DIR: dataDir },
  stdio: ['ignore', 'ignore', 'inherit'],
});

async function until(s, css, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await s.find(css)).length > 0) return;
    await sleep(5);
  }
  throw new Error(`${css} did not appear within ${timeoutMs} ms`);
}

async function modelState(s) {
  try {
    return (await s.invoke('current_model')).state;
  } catch {
    return 'unknown';
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  // Wait for tauri-driver to listen (a session request fails until it does) with a throwaway
  // launch; with --model it also chooses the model.
  const first = await Session.start(BASE, opt.app);
  if (opt.model) {
    const m = await first.invoke('import_model', { path: opt.model });
    await first.exec(
      `const id = window.__TAURI_INTERNALS__.transformCallback(() => {});
       return await window.__TAURI_INTERNALS__.invoke('load_model', { modelId: arguments[0], onProgress: '__CHANNEL__:' + id });`,
      [m.id],
    );
  }
  await first.end();
  await sleep(1000);

  const interactive = [];
  const modelReady = [];
  for (let i = 0; i < Number(opt.runs); i++) {
    const t0 = performance.now();
    const s = await Session.start(BASE, opt.app);
    await until(s, opt.selector, 30000);
    interactive.push(Math.round(performance.now() - t0));
    if (opt.model) {
      const loadingSeen = await modelState(s);
      for (;;) {
        const st = await modelState(s);
        if (st === 'ready' || st === 'error') {
          if (st === 'error') throw new Error('the remembered model failed to load');
          break;
        }
        if (performance.now() - t0 > 120000) throw new Error(`model not ready after 120 s (state ${st})`);
        await sleep(20);
      }
      modelReady.push({ ms: Math.round(performance.now() - t0), stateWhenInteractive: loadingSeen });
    }
    await s.end();
    await sleep(1000);
  }
  console.log(JSON.stringify({
    app: opt.app,
    selector: opt.selector,
    runs: interactive.length,
    interactive_ms: interactive,
    interactive_median_ms: median(interactive),
    ...(opt.model ? {
      model_ready_ms: modelReady.map((r) => r.ms),
      model_ready_median_ms: median(modelReady.map((r) => r.ms)),
      model_state_when_interactive: modelReady.map((r) => r.stateWhenInteractive),
    } : {}),
  }));
} finally {
  driver.kill('SIGTERM');
  await new Promise((r) => { driver.once('exit', r); setTimeout(r, 5000); });
  rmSync(dataDir, { recursive: true, force: true });
}
