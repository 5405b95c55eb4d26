// The Settings page's Hugging Face token: saved through set_hf_token once, never shown again
// (the input is emptied, the token appears nowhere in the page), removed with '', and the status
// line in English and Korean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot } from './helpers.mjs';

const { withApp } = useApp();

const TOKEN = 'hf_TESTtokenValue1234567890abcdef';
const L = {
  en: { settings: 'Settings', label: 'Read token', save: 'Save token', remove: 'Remove token', heading: 'Hugging Face token', set: 'A token is set.', none: "No token: gated models (Google's own QAT files) cannot be downloaded." },
  ko: { settings: '설정', label: '읽기 토큰', save: '토큰 저장', remove: '토큰 삭제', heading: 'Hugging Face 토큰', set: '토큰이 설정되어 있습니다.', none: '토큰 없음: 접근 제한 모델(Google의 자체 QAT 파일)은 내려받을 수 없습니다.' },
};

async function openSettings(page, l) {
  await page.getByRole('button', { name: l.settings }).click();
  await page.waitForSelector('#set-hfToken');
}

const statusText = (page) => page.locator('#hf-token-status').textContent();

for (const lang of ['en', 'ko']) {
  const l = L[lang];
  test(`save and remove a Hugging Face token [${lang}]`, async () => {
    await withApp(chatSeed({ settings: { theme: 'light', language: lang } }), async (page) => {
      assert.equal((await mock(page, 'callsOf', 'hf_token_status')).length, 1, 'the status is asked at start');
      await openSettings(page, l);
      assert.equal(await page.getByRole('heading', { name: l.heading }).count(), 1);
      const input = page.getByLabel(l.label);
      assert.equal(await input.getAttribute('type'), 'password');
      assert.equal(await input.getAttribute('autocomplete'), 'off');
      assert.equal(await input.inputValue(), '');
      assert.equal(await statusText(page), l.none);
      assert.equal(await page.getByRole('button', { name: l.remove }).isVisible(), false, 'nothing to remove');

      // An empty Save sends nothing.
      await page.getByRole('button', { name: l.save }).click();
      assert.equal((await mock(page, 'callsOf', 'set_hf_token')).length, 0);

      await input.fill(`  ${TOKEN}  `);
      await page.getByRole('button', { name: l.save }).click();
      await page.waitForSelector(`#hf-token-status >> text=${l.set}`);
      assert.deepEqual((await mock(page, 'callsOf', 'set_hf_token')).map((c) => c.args), [{ token: TOKEN }], 'sent once, trimmed');
      assert.equal(await input.inputValue(), '', 'the input is emptied after saving');
      assert.equal(await mock(page, 'hasToken'), true);
      const html = await page.evaluate(() => document.documentElement.outerHTML);
      assert.ok(!html.includes(TOKEN) && !html.includes('hf_TEST'), 'the token appears nowhere in the page');
      assert.equal(await page.locator('#set-hfToken').evaluate((el) => el.value), '');
      if (lang === 'en') {
        await page.locator('#hf-token-note').scrollIntoViewIfNeeded();
        await screenshot(page, 'settings-token-en');
      }

      // Leaving the page and coming back: still set, the input still empty.
      await page.getByRole('button', { name: lang === 'en' ? 'Models' : '모델' }).click();
      await openSettings(page, l);
      assert.equal(await statusText(page), l.set);
      assert.equal(await page.getByLabel(l.label).inputValue(), '');

      await page.getByRole('button', { name: l.remove }).click();
      await page.waitForSelector(`#hf-token-status >> text=${l.none}`);
      assert.deepEqual((await mock(page, 'callsOf', 'set_hf_token')).map((c) => c.args), [{ token: TOKEN }, { token: '' }]);
      assert.equal(await page.getByRole('button', { name: l.remove }).isVisible(), false);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'set-hfToken', 'focus stays in the section');
    });
  });
}

test('a token already available shows as set; a refused save shows the translated error and keeps the input', async () => {
  await withApp(chatSeed({ hfToken: true }), async (page) => {
    await openSettings(page, L.en);
    assert.equal(await statusText(page), L.en.set);
    assert.equal(await page.getByRole('button', { name: L.en.remove }).isVisible(), true);

    await mock(page, 'fail', 'set_hf_token', 'io', 'could not write /data/hf_token: permission denied', { path: '/data/hf_token' });
    await page.getByLabel(L.en.label).fill(TOKEN);
    await page.getByLabel(L.en.label).press('Enter');
    await page.waitForSelector('#hf-token-error [data-error-code="io"]');
    assert.equal(await page.getByLabel(L.en.label).getAttribute('aria-invalid'), 'true');
    assert.equal(await statusText(page), L.en.set, 'the status is unchanged');
    assert.equal(await page.getByLabel(L.en.label).inputValue(), TOKEN, 'the input keeps the token for another try');
    const html = await page.evaluate(() => document.documentElement.outerHTML);
    assert.ok(!html.includes(TOKEN), 'the token is not rendered into the error either');

    // The next try succeeds and clears the error.
    await page.getByRole('button', { name: L.en.save }).click();
    await page.waitForFunction(() => document.querySelector('#hf-token-error')?.childElementCount === 0);
    assert.equal(await page.getByLabel(L.en.label).inputValue(), '');
    assert.equal(await page.getByLabel(L.en.label).getAttribute('aria-invalid'), null);
  });
});
