// A minimal W3C WebDriver client over fetch (Node 20): enough to drive the app through
// tauri-driver without pulling a WebDriver library into the repository.
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecc';

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async start(base, application, { attempts = 60 } = {}) {
    let lastErr;
    // tauri-driver needs a moment to listen after it starts.
    for (let i = 0; i < attempts; i++) {
      try {
        const v = await request(base, 'POST', '/session', {
          capabilities: { alwaysMatch: { 'tauri:options': { application } } },
        });
        return new Session(base, v.sessionId);
      } catch (e) {
        lastErr = e;
        await sleep(500);
      }
    }
    throw new Error(`could not start a WebDriver session: ${lastErr}`);
  }

  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const els = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    // W3C names the key; some drivers answer with the legacy "ELEMENT" key instead.
    return els.map((e) => e[ELEMENT] ?? e.ELEMENT ?? Object.values(e)[0]);
  }

  /** Waits until `css` matches an element (and `pred(text)` holds for its text when given). */
  async waitFor(css, { timeout = 30000, text } = {}) {
    const end = Date.now() + timeout;
    let last = '';
    while (Date.now() < end) {
      const els = await this.find(css);
      if (els.length > 0) {
        if (!text) return els[0];
        try {
          last = await this.text(els[els.length - 1]);
          if (text(last)) return els[els.length - 1];
        } catch (e) {
          // A streamed reply re-renders between the find and the read: look again.
          if (!/stale element|no such element/.test(String(e))) throw e;
        }
      }
      await sleep(200);
    }
    throw new Error(`timed out waiting for ${css}${text ? ` (last text: ${JSON.stringify(last)})` : ''}`);
  }

  /** Finds `css` and acts on it, finding it again when the UI re-rendered it in between. */
  async retrying(css, act, { timeout = 30000 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      try {
        return await act(await this.waitFor(css, { timeout: Math.max(1000, end - Date.now()) }));
      } catch (e) {
        if (!/stale element|no such element/.test(String(e)) || Date.now() > end) throw e;
        await sleep(200);
      }
    }
  }

  clickOn(css, opts) {
    return this.retrying(css, (el) => this.click(el), opts);
  }

  typeInto(css, value, opts) {
    return this.retrying(css, (el) => this.type(el, value), opts);
  }

  async text(el) {
    return this.cmd('GET', `/element/${el}/text`);
  }

  async click(el) {
    return this.cmd('POST', `/element/${el}/click`, {});
  }

  async type(el, value) {
    return this.cmd('POST', `/element/${el}/value`, { text: value });
  }

  /** Runs `script` (a function body) in the page; resolves with its awaited return value. */
  async exec(script, args = []) {
    return this.cmd('POST', '/execute/async', {
      script: `const done = arguments[arguments.length - 1];
        Promise.resolve((async () => { ${script} })(...arguments)).then(
          (v) => done({ ok: v === undefined ? null : v }),
          (e) => done({ err: (e && (e.message || JSON.stringify(e))) || String(e) }));`,
      args,
    }).then((r) => {
      if (r && 'err' in r) throw new Error(`in page: ${r.err}`);
      return r?.ok;
    });
  }

  /** Calls a Tauri command through the page's IPC bridge, as the UI does. */
  invoke(cmd, args = {}) {
    return this.exec('return await window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]);', [cmd, args]);
  }

  async screenshotPng() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  async end() {
    try {
      await this.cmd('DELETE', '');
    } catch {
      // The app may already be gone: quitting is what this is for.
    }
  }
}

async function request(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json.value ?? json)}`);
  return json.value;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
