// Shared plumbing for the UI tests: a static server for dist/ on 127.0.0.1, headless Chromium
// through playwright-core, and a page with the mock backend injected before the app's scripts.
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const uiRoot = path.resolve(here, '..');
const distDir = path.join(uiRoot, 'dist');
const mockPath = path.join(uiRoot, 'dist-mock', 'mock.js');
export const screenshotDir = path.resolve(uiRoot, '..', 'docs', 'screenshots');

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf', '.svg': 'image/svg+xml', '.png': 'image/png' };

export async function startServer() {
  if (!existsSync(path.join(distDir, 'index.html'))) throw new Error(`ui/dist is missing: run "npm run build:test" in ui/ first`);
  if (!existsSync(mockPath)) throw new Error(`ui/dist-mock/mock.js is missing: run "npm run build:test" in ui/ first`);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = path.join(distDir, path.normalize(rel));
    if (!file.startsWith(distDir)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

export async function launch() {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`Chromium not found at ${executablePath}: apt-get install chromium (scripts/test-ui does this)`);
  // playwright-core gives Chromium a fresh temporary --user-data-dir per launch (it refuses one passed in args);
  // each test then gets its own isolated context (storage, permissions).
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    newContext: async (url) => {
      const context = await browser.newContext({ viewport: { width: 1200, height: 780 } });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
      return context;
    },
    close: async () => {
      await browser.close();
    },
  };
}

export const MODEL = { id: 'gemma-3-270m', name: 'Gemma 3 270M', path: '/models/gemma-3-270m-q4_k_m.gguf', sizeBytes: 253_000_000, quant: 'Q4_K_M', contextLength: 32768 };

export const CATALOG = [
  { id: 'gemma-3-1b', name: 'Gemma 3 1B', family: 'Gemma 3 1B', quant: 'Q4_K_M', sizeBytes: 806_000_000, requiredBytes: 1_300_000_000, availableBytes: 16_000_000_000, fit: 'fits', params: '1B', contextLength: 32768, installed: false },
  { id: 'gemma-3-4b', name: 'Gemma 3 4B', family: 'Gemma 3 4B', quant: 'Q4_K_M', sizeBytes: 2_490_000_000, requiredBytes: 4_100_000_000, availableBytes: 16_000_000_000, fit: 'fits', params: '4B', contextLength: 131072, installed: false },
  { id: 'gemma-3-12b', name: 'Gemma 3 12B', family: 'Gemma 3 12B', quant: 'Q4_K_M', sizeBytes: 7_300_000_000, requiredBytes: 11_000_000_000, availableBytes: 16_000_000_000, fit: 'tight', params: '12B', contextLength: 131072, installed: false },
  { id: 'gemma-3-27b', name: 'Gemma 3 27B', family: 'Gemma 3 27B', quant: 'Q4_K_M', sizeBytes: 16_500_000_000, requiredBytes: 22_000_000_000, availableBytes: 16_000_000_000, fit: 'too_big', params: '27B', contextLength: 131072, installed: false },
];

/** A ready-to-chat seed: one model loaded and a few conversations. */
export function chatSeed(extra = {}) {
  return {
    installed: [MODEL],
    loaded: MODEL.id,
    catalog: CATALOG,
    settings: { theme: 'light', language: 'en' },
    conversations: [
      { title: 'Trip to Jeju', pinned: true, messages: [['Plan a 3 day trip to Jeju', 'Day 1: Hallasan. Day 2: the east coast. Day 3: Udo island.']] },
      { title: 'Rust lifetimes', messages: [['Explain lifetimes briefly', 'A lifetime names how long a **borrow** is valid.']] },
      { title: '회의록 정리', messages: [['오늘 회의록을 요약해 줘', '오늘 회의에서는 출시 일정과 테스트 계획을 논의했습니다.']] },
    ],
    ...extra,
  };
}

/** Opens the app with the mock backend seeded; resolves once the first load is done. */
export async function openApp(context, url, seed) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.addInitScript({ path: mockPath });
  await page.addInitScript((s) => window.__hearthMock.configure(s), seed);
  await page.goto(url);
  await page.waitForSelector('html[data-ready="1"]');
  page.pageErrors = errors;
  return page;
}

export async function screenshot(page, name) {
  await mkdir(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `ui-${name}.png`) });
}

export const mock = (page, fn, ...args) => page.evaluate(([f, a]) => window.__hearthMock[f](...a), [fn, args]);

/**
 * A test file's browser and dist/ server, started before its tests and closed after them, and
 * `withApp(seed, fn)`: a fresh context with the app opened on `seed`, `fn(page, context)`, and
 * (unless `failOnPageErrors` is false) a failure on any uncaught page error.
 */
export function useApp({ failOnPageErrors = true } = {}) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer();
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  env.withApp = async (seed, fn) => {
    const context = await env.browser.newContext(env.server.url);
    try {
      const page = await openApp(context, env.server.url, seed);
      await fn(page, context);
      if (failOnPageErrors) assert.deepEqual(page.pageErrors.map(String), [], 'no uncaught page errors');
    } finally {
      await context.close();
    }
  };
  return env;
}
