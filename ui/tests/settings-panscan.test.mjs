// Issue 10: Pan & Scan is a setting, off by default, toggled on the Settings page (saved at once
// through set_settings, kept across a reload), in English and Korean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock } from './helpers.mjs';

const { withApp } = useApp();

/** Waits until set_settings was called `n` times. */
const saved = (page, n) => page.waitForFunction((k) => window.__hearthMock.callsOf('set_settings').length === k, n);

async function openSettings(page, name = 'Settings') {
  await page.getByRole('button', { name }).click();
  await page.waitForSelector('#set-panScan');
}

test('Pan & Scan is off by default; the toggle saves it and the page shows it after a reload', async () => {
  await withApp(chatSeed(), async (page) => {
    await openSettings(page);
    const box = page.getByLabel('Pan & Scan: read wide and tall images in detail');
    assert.equal(await box.isChecked(), false);
    assert.equal(await box.getAttribute('aria-describedby'), 'set-panScan-note');
    assert.match(await page.locator('#set-panScan-note').textContent(), /up to 4 crops/);

    await box.check();
    await saved(page, 1);
    const saves = await mock(page, 'callsOf', 'set_settings');
    assert.deepEqual(saves.map((c) => c.args.patch), [{ panScan: true }]);

    await page.reload();
    await openSettings(page);
    assert.equal(await page.getByLabel('Pan & Scan: read wide and tall images in detail').isChecked(), true);
    await page.getByLabel('Pan & Scan: read wide and tall images in detail').uncheck();
    await saved(page, 1);
    assert.deepEqual((await mock(page, 'callsOf', 'set_settings')).map((c) => c.args.patch), [{ panScan: false }]);
  });
});

test('the toggle is labelled in Korean', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'ko', panScan: true } }), async (page) => {
    await openSettings(page, '설정');
    const box = page.getByLabel('팬 앤 스캔: 가로나 세로로 긴 이미지를 자세히 읽기');
    assert.equal(await box.isChecked(), true);
    assert.match(await page.locator('#set-panScan-note').textContent(), /최대 4개/);
  });
});
