// What the browser tests and tools/screenshot.mjs share: serving www/ on 127.0.0.1, launching
// Debian's Chromium through playwright-core (never a downloaded browser, WebGPU on), synthetic
// drops, waiting for the image queue, and a tiny test runner.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const ART = join(ROOT, 'test-artifacts');
mkdirSync(ART, { recursive: true });
export const PHOTOS = join(ROOT, 'fixtures/photos');
// The headless Chromium's WebGPU is SwiftShader (a CPU): a forward of the mini net takes a
// second or two there, ten crops longer, and CI machines are slow and shared.
export const WAIT = { timeout: 120000 };

/** Serves www/ (tools/serve.py: COOP/COEP, wasm MIME type) on a free port. */
export function startServer() {
  return new Promise((resolve, reject) => {
    const srv = spawn('python3', [join(ROOT, 'tools/serve.py'), '--dir', join(ROOT, 'www'), '--port', '0']);
    srv.stdout.on('data', (d) => {
      const m = /http:\/\/[\d.]+:\d+\//.exec(d.toString());
      if (m) resolve({ srv, url: m[0] });
    });
    srv.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    setTimeout(() => reject(new Error('server did not start in 10 s')), 10000);
  });
}

/** Debian's Chromium with WebGPU; playwright gives every launch a fresh temporary profile. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects a page's console and errors (written next to the screenshots). */
export function collectLogs(page, logs) {
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
}

/** `check(name, fn)` runs one named check and counts it; `summary()` exits 1 on a failure. */
export function runner() {
  let passed = 0;
  let failed = 0;
  return {
    async check(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok - ${name}`);
      } catch (e) {
        failed++;
        console.log(`not ok - ${name}\n  ${e.stack || e}`);
      }
    },
    summary() {
      console.log(`${passed} passed, ${failed} failed`);
      return failed ? 1 : 0;
    },
  };
}

export const photo = (name) => ({ name, mime: name.endsWith('.jpg') ? 'image/jpeg' : 'image/png', data: readFileSync(join(PHOTOS, name)) });

/**
 * Drops files on the element with `testid` the way a browser does: a DataTransfer holding
 * Files, with dragenter, dragover and drop events. A file is `{name, mime, data: Buffer}` or
 * `{name, mime, zeros: N}` (N zero bytes, made in the page rather than sent over).
 */
export async function drop(page, testid, files) {
  await page.evaluate(({ testid, files }) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bytes = f.zeros ? new Uint8Array(f.zeros) : Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.mime }));
    }
    const target = document.querySelector(`[data-testid="${testid}"]`);
    for (const type of ['dragenter', 'dragover', 'drop']) {
      target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  }, { testid, files: files.map((f) => ({ name: f.name, mime: f.mime, zeros: f.zeros, b64: f.data ? f.data.toString('base64') : '' })) });
}

/** Waits until the newest queue item named `name` is done or failed; returns which. */
export async function settled(page, name) {
  const h = await page.waitForFunction((name) => {
    const lis = [...document.querySelectorAll('[data-testid="queue"] li')]
      .filter((li) => li.querySelector('.name')?.textContent === name);
    const s = lis.length && lis[lis.length - 1].dataset.status;
    return (s === 'done' || s === 'error') && s;
  }, name, WAIT);
  return h.jsonValue();
}
