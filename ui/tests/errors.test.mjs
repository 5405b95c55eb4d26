// Errors as a type: the backend's {code, message, details} is shown as the translated sentence for
// its code with the details filled in, in Korean and in English; the backend's raw English
// message appears only inside a collapsed "details" element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApp, chatSeed, mock, screenshot, MODEL, CATALOG } from './helpers.mjs';

const { withApp } = useApp();

const L = {
  en: { models: 'Models', download: 'Download: Gemma 3 4B', load: 'Load', message: 'Message', details: 'Details', failedLoad: 'Failed to load', failedDownload: 'Download failed', chats: 'Chats' },
  ko: { models: '모델', download: '내려받기: Gemma 3 4B', load: '불러오기', message: '메시지', details: '자세히', failedLoad: '불러오기 실패', failedDownload: '내려받기 실패', chats: '대화' },
};

const GATED_REPO = 'google/gemma-3-4b-it-qat-q4_0-gguf';
const GATED_RAW = `401 Unauthorized for ${GATED_REPO}: Accept the model's licence on its Hugging Face page, then add a Hugging Face read token and try again.`;
const GATED = {
  en: `Hugging Face refused access to ${GATED_REPO}. Accept the model's licence on its Hugging Face page and add a read token in Settings → Hugging Face token.`,
  ko: `Hugging Face가 ${GATED_REPO}에 대한 접근을 거부했습니다. Hugging Face의 모델 페이지에서 라이선스에 동의하고 설정 → Hugging Face 토큰에서 읽기 토큰을 추가하세요.`,
};

// 11 GB needed, 6 GB free: formatBytes shows them in GiB with one decimal.
const OOM_RAW = 'not enough memory: the model needs 11000000000 bytes, 6000000000 are available';
const OOM = {
  en: 'There is not enough free memory for this model: it needs 10.2 GB and 5.6 GB is free. Close other programs or choose a smaller model.',
  ko: '이 모델을 불러오기에는 메모리가 부족합니다. 필요한 메모리는 10.2 GB인데 사용 가능한 메모리는 5.6 GB입니다. 다른 프로그램을 닫거나 더 작은 모델을 선택하세요.',
};

const GGUF_RAW = `invalid GGUF file ${MODEL.path}: bad magic 0x00000000`;
const GGUF = {
  en: `${MODEL.path} is not a GGUF model Hearth can read. It may be incomplete or damaged.`,
  ko: `${MODEL.path} 파일은 Hearth가 읽을 수 있는 GGUF 모델이 아닙니다. 파일이 불완전하거나 손상되었을 수 있습니다.`,
};

const BUSY_RAW = 'a reply is being generated or a model is loading';
const BUSY = {
  en: 'Hearth is busy writing a reply or loading a model. Try again once it has finished.',
  ko: 'Hearth가 답변을 생성하거나 모델을 불러오는 중입니다. 끝난 뒤에 다시 시도하세요.',
};

/**
 * Where `raw` shows outside a collapsed details element: text nodes (a details' summary counts as
 * outside) and every attribute (titles, labels). Returns the offending elements' tags.
 */
const rawOutsideDetails = (page, raw) =>
  page.evaluate((raw) => {
    const hits = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (el.closest('details') && !el.closest('summary')) continue;
      if (n.textContent.includes(raw)) hits.push(`text in <${el.tagName.toLowerCase()} class="${el.className}">`);
    }
    for (const el of document.querySelectorAll('*')) {
      for (const a of el.attributes) if (a.value.includes(raw)) hits.push(`${a.name} of <${el.tagName.toLowerCase()}>`);
    }
    if (document.body.innerText.includes(raw)) hits.push('body.innerText');
    return hits;
  }, raw);

/** The checks every shown error must pass, for the error shown in `scope` (a locator). */
async function assertShown(page, scope, lang, sentence, raw) {
  await scope.locator('.error-sentence, .toast-text > strong').filter({ hasText: sentence }).first().waitFor();
  const details = scope.locator('details.error-details').first();
  assert.equal(await details.getAttribute('open'), null, 'the details start collapsed');
  assert.equal(await details.locator('summary').textContent(), L[lang].details);
  assert.equal(await details.locator('.error-raw').textContent(), raw, 'the details hold the raw message');
}

async function assertNoRawText(page, lang, raw, sentences) {
  assert.equal(await page.locator('details.error-details[open]').count(), 0);
  assert.deepEqual(await rawOutsideDetails(page, raw), [], 'the raw message only inside the collapsed details');
  if (lang === 'ko') {
    // No English sentence in the Korean UI's main text: neither the raw message nor the English translation.
    const text = await page.evaluate(() => document.body.innerText);
    assert.ok(!text.includes(sentences.en), 'no English sentence in the Korean UI');
    for (const s of await page.locator('.error-sentence, .toast-error .toast-text > strong').allTextContents()) assert.match(s, /[가-힣]/, `Korean sentence: ${s}`);
  }
}

for (const lang of ['ko', 'en']) {
  test(`a failed download (gated) shows the translated sentence with the repository [${lang}]`, async () => {
    await withApp(chatSeed({ settings: { theme: 'light', language: lang } }), async (page) => {
      await page.getByRole('button', { name: L[lang].models, exact: true }).click();
      await page.getByRole('button', { name: L[lang].download }).click();
      await page.waitForFunction(() => window.__hearthMock.callsOf('download_model').length === 1);
      await mock(page, 'downloadProgress', 'gemma-3-4b', 1_000_000, 2_490_000_000, 5_000_000, 500);
      await mock(page, 'failDownload', 'gemma-3-4b', 'gated', GATED_RAW, { model: GATED_REPO });
      const card = page.locator('.card[data-model="gemma-3-4b"]');
      await card.locator(`.badge-error >> text=${L[lang].failedDownload}`).waitFor();
      await assertShown(page, card, lang, GATED[lang], GATED_RAW);
      await assertShown(page, page.locator('.toast-error'), lang, GATED[lang], GATED_RAW);
      await assertNoRawText(page, lang, GATED_RAW, GATED);
      await screenshot(page, `errors-download-${lang}`);
      // Opening the details shows the code and the raw message.
      await card.locator('details summary').click();
      assert.ok(await card.locator('details .error-raw').isVisible());
      assert.equal(await card.locator('details code').textContent(), 'gated');
    });
  });

  for (const [code, raw, details, sentences] of [
    ['out_of_memory', OOM_RAW, { needed: 11_000_000_000, available: 6_000_000_000 }, OOM],
    ['not_gguf', GGUF_RAW, { path: MODEL.path }, GGUF],
  ]) {
    test(`a failed load (${code}) shows the translated sentence with its details [${lang}]`, async () => {
      await withApp({ installed: [MODEL], catalog: CATALOG, settings: { theme: 'light', language: lang } }, async (page) => {
        await page.getByRole('button', { name: L[lang].models, exact: true }).click();
        await mock(page, 'failNextLoad', code, raw, details);
        await page.locator(`.row[data-model="${MODEL.id}"]`).getByRole('button', { name: L[lang].load, exact: true }).click();
        const row = page.locator(`.row[data-model="${MODEL.id}"]`);
        await assertShown(page, row, lang, sentences[lang], raw);
        await assertShown(page, page.locator('.toast-error'), lang, sentences[lang], raw);
        assert.equal(await page.locator('.toast-error').count(), 1, 'one toast, though the error came as an event and a rejection');
        assert.equal(await row.locator('.badge-error').textContent(), L[lang].failedLoad);
        await assertNoRawText(page, lang, raw, sentences);
        if (code === 'out_of_memory') {
          // The English screenshot shows the details opened: the code and the backend's own words.
          if (lang === 'en') await row.locator('details summary').click();
          await screenshot(page, `errors-load-${lang}`);
        }
        // The chat header says the load failed too.
        await page.getByRole('button', { name: L[lang].chats, exact: true }).click();
        assert.equal(await page.locator('#model-state').textContent(), L[lang].failedLoad);
      });
    });
  }

  test(`a busy refusal of send_message shows the translated sentence and keeps the draft [${lang}]`, async () => {
    await withApp(chatSeed({ settings: { theme: 'light', language: lang } }), async (page) => {
      await page.getByRole('button', { name: 'Rust lifetimes', exact: true }).click();
      await page.waitForSelector('.messages .msg');
      await mock(page, 'busy');
      const box = page.getByRole('textbox', { name: L[lang].message, exact: true });
      await box.fill('one more question');
      await box.press('Enter');
      const toast = page.locator('.toast-error');
      await assertShown(page, toast, lang, BUSY[lang], BUSY_RAW);
      await assertNoRawText(page, lang, BUSY_RAW, BUSY);
      assert.equal(await box.inputValue(), 'one more question', 'the refused draft is given back');
      assert.equal(await page.locator('#send-btn').count(), 1, 'composer usable again');
      assert.deepEqual(await mock(page, 'messageTexts', (await mock(page, 'callsOf', 'send_message'))[0].args.conversationId), ['Explain lifetimes briefly', 'A lifetime names how long a **borrow** is valid.'], 'nothing stored');
      await screenshot(page, `errors-busy-${lang}`);
    });
  });
}

test('a reply that failed mid-stream keeps its translated error under the message, also after a language switch', async () => {
  await withApp(chatSeed({ settings: { theme: 'light', language: 'en' } }), async (page) => {
    await page.getByRole('button', { name: 'Rust lifetimes', exact: true }).click();
    await page.waitForSelector('.messages .msg');
    const box = page.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill('a long question');
    await box.press('Enter');
    await page.waitForFunction(() => window.__hearthMock.streaming());
    await mock(page, 'token', 'Partial');
    const raw = 'the conversation no longer fits: 4100 tokens, context 4096';
    await mock(page, 'error', raw, 'context_full', { needed: 4100, limit: 4096 });
    const failed = page.locator('.msg-assistant.state-error');
    const en = "This conversation no longer fits in the model's context: it needs 4,100 tokens and the context holds 4,096. Start a new chat, or raise the context size in Settings.";
    await assertShown(page, failed, 'en', en, raw);
    await page.locator('.toast .icon-btn').click();
    // The stored error is translated again when the language changes.
    await page.getByRole('button', { name: 'Settings', exact: true }).click();
    await page.getByLabel('Language').selectOption('ko');
    await page.getByRole('button', { name: '대화', exact: true }).click();
    await page.getByRole('button', { name: 'Rust lifetimes', exact: true }).click();
    const ko = '대화가 모델의 컨텍스트를 넘었습니다. 토큰이 4,100개 필요한데 컨텍스트에는 4,096개까지만 들어갑니다. 새 대화를 시작하거나 설정에서 컨텍스트 크기를 늘리세요.';
    await assertShown(page, page.locator('.msg-assistant.state-error'), 'ko', ko, raw);
    await assertNoRawText(page, 'ko', raw, { en });
  });
});

const CODES = ['not_found', 'invalid_id', 'invalid_title', 'invalid_url', 'invalid_message', 'invalid_setting', 'invalid_query', 'busy', 'no_model', 'model_in_use', 'context_full', 'context_too_long', 'not_gguf', 'unsupported_model', 'out_of_memory', 'already_installed', 'download_running', 'disk_full', 'io', 'locked', 'read_only', 'database_corrupt', 'newer_schema', 'network', 'gated', 'checksum', 'bad_download', 'catalog', 'attachment_missing', 'attachment_unreadable', 'attachment_too_large', 'engine', 'internal'];
const ALL_DETAILS = { path: '/data/x.gguf', model: 'google/x', field: 'temperature', size: 70_000_000, limit: 67_108_864, needed: 9_000, available: 8_000, min: 0, max: 2 };

for (const lang of ['ko', 'en']) {
  test(`every error code has its own ${lang} sentence, with or without details, and none gives CLI instructions`, async () => {
    await withApp(chatSeed({ settings: { theme: 'light', language: lang } }), async (page) => {
      const sentenceFor = async (code, details) => {
        await mock(page, 'fail', 'list_messages', code, `raw ${code}`, details);
        await page.getByRole('button', { name: 'Rust lifetimes', exact: true }).click();
        const strong = page.locator('.toast-error .toast-text > strong');
        await strong.waitFor();
        const text = await strong.textContent();
        await page.evaluate(() => document.querySelector('.toasts').replaceChildren());
        return text;
      };
      const internal = await sentenceFor('internal', {});
      const seen = new Set();
      for (const code of CODES) {
        for (const details of [{}, ALL_DETAILS]) {
          const s = await sentenceFor(code, details);
          assert.ok(s.length > 10, `${code}: ${s}`);
          if (code !== 'internal') assert.notEqual(s, internal, `${code} has its own sentence`);
          assert.doesNotMatch(s, /undefined|NaN|null|\{|\}|`|raw /, `${code}: nothing unfilled or raw: ${s}`);
          assert.doesNotMatch(s, /(^|\s)hearth [a-z]|HF_TOKEN/, `${code}: no CLI instructions: ${s}`);
          assert.doesNotMatch(s, /terminal|command line|명령/i, `${code}: no CLI instructions: ${s}`);
          if (lang === 'ko') assert.match(s, /[가-힣]/, `${code}: Korean: ${s}`);
          else assert.doesNotMatch(s, /[가-힣]/, `${code}: English: ${s}`);
          seen.add(s);
        }
      }
      assert.ok(seen.size >= CODES.length, 'distinct sentences');
    });
  });
}
