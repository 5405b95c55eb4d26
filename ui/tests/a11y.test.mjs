// Accessibility: axe-core finds no serious or critical problems on the main screens in both
// themes and languages, and the chat can be driven by keyboard alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { useApp, openApp, chatSeed, mock, uiRoot, CATALOG } from './helpers.mjs';

const axePath = path.join(uiRoot, 'node_modules', 'axe-core', 'axe.min.js');
const env = useApp();

async function axe(page) {
  // evaluate() is not subject to the page's CSP (script-src 'self'), unlike an injected <script>.
  await page.evaluate(await readFile(axePath, 'utf8'));
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

for (const [theme, language] of [['light', 'en'], ['dark', 'ko']]) {
  test(`no serious axe violations on chat, models, settings and first run (${theme}, ${language})`, async () => {
    const context = await env.browser.newContext(env.server.url);
    try {
      const page = await openApp(context, env.server.url, chatSeed({ settings: { theme, language } }));
      await page.locator('.conv-open').nth(1).click();
      await page.waitForSelector('.msg-assistant');
      assert.deepEqual(await axe(page), [], 'chat');
      await page.locator('.nav-btn').nth(1).click();
      await page.waitForSelector('.models-page');
      assert.deepEqual(await axe(page), [], 'models');
      await page.locator('.nav-btn').nth(2).click();
      await page.waitForSelector('.settings-page');
      assert.deepEqual(await axe(page), [], 'settings');
      const fresh = await openApp(context, env.server.url, { catalog: CATALOG, settings: { theme, language } });
      await fresh.waitForSelector('.first-run');
      assert.deepEqual(await axe(fresh), [], 'first run');
    } finally {
      await context.close();
    }
  });
}

test('keyboard alone: open a chat from the sidebar, send, stop, regenerate', async () => {
  const context = await env.browser.newContext(env.server.url);
  try {
    const page = await openApp(context, env.server.url, chatSeed());
    // Tab from the search box into the conversation list and open the first chat with Enter.
    await page.keyboard.press('Control+k');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Trip to Jeju');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.msg-assistant');
    // Tab reaches the chat's actions (pin, rename, delete) next, each with a name.
    await page.keyboard.press('Tab');
    assert.match(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), /^Unpin: Trip to Jeju$/);
    await page.locator('#composer-input').focus();
    await page.keyboard.type('by keyboard');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    await mock(page, 'token', 'typing');
    await page.keyboard.press('Escape');
    await page.waitForSelector('.badge >> text=Stopped');
    // Shift+Tab from the composer walks back up through the last reply's actions to Regenerate.
    await page.locator('#composer-input').focus();
    let found = false;
    for (let i = 0; i < 12 && !found; i++) {
      await page.keyboard.press('Shift+Tab');
      found = (await page.evaluate(() => document.activeElement?.getAttribute('data-action'))) === 'regenerate';
    }
    assert.ok(found, 'Regenerate is reachable with Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.callsOf('regenerate').length === 1);
  } finally {
    await context.close();
  }
});
