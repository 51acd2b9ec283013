// Shared harness of the browser tests: one `souk serve` per test file (temporary data
// dir, free port, a platform admin), Debian's chromium through playwright-core, REST
// helpers, the e-mail outbox, screenshots and polling waits (no fixed sleeps).
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..');
const REPO = path.resolve(ROOT, '..');
const ARTIFACTS = path.join(ROOT, 'artifacts');
const CHROMIUM = process.env.SOUK_CHROMIUM || '/usr/bin/chromium';
/** The sample data shared by the project (`../shared/data` next to the repository). */
const DATA = process.env.SOUK_SHARED_DATA || path.resolve(REPO, '..', 'shared', 'data');

const ADMIN_EMAIL = 'admin@souk.test';
const ADMIN_PASSWORD = 'browser-admin-Passw0rd!';
/** How long a state may take to appear (provisioning and imports included). */
const TIMEOUT = Number(process.env.SOUK_BROWSER_TIMEOUT_MS || 30000);

/** The souk binary to run: $SOUK_BIN (run.sh copies the build there), else a private
 * copy of target/debug/souk (the target dir may be rebuilt while the tests run). */
function soukBinary() {
  if (process.env.SOUK_BIN) return process.env.SOUK_BIN;
  const built = path.join(REPO, 'target', 'debug', 'souk');
  if (!fs.existsSync(built)) {
    throw new Error(`no souk binary: set SOUK_BIN or run \`cargo build --bin souk\` (looked for ${built})`);
  }
  const copy = path.join(os.tmpdir(), `souk-browser-${process.pid}`);
  if (!fs.existsSync(copy)) {
    fs.copyFileSync(built, copy);
    process.on('exit', () => fs.rmSync(copy, { force: true }));
  }
  fs.chmodSync(copy, 0o755);
  return copy;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value (returned) or `timeout` ms pass (throws
 * with `what`). For conditions outside the page (files, the REST API). */
async function until(what, fn, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `souk serve` for one test file and creates the platform admin.
 * Returns { base, port, dataDir, admin: {email,password}, api(), stop() }.
 */
async function startSouk(name, opts = {}) {
  const bin = soukBinary();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `souk-browser-${name}-`));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    SOUK_DATA_DIR: dataDir,
    SOUK_PUBLIC_URL: base,
    SOUK_LOG: process.env.SOUK_LOG || 'warn',
  };
  delete env.SOUK_DATABASE_URL;
  execFileSync(bin, ['admin', 'create', '--email', ADMIN_EMAIL, '--password', ADMIN_PASSWORD], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  fs.mkdirSync(path.join(ARTIFACTS, 'logs'), { recursive: true });
  const log = fs.openSync(path.join(ARTIFACTS, 'logs', `${name}.log`), 'w');
  const serveArgs = ['serve', '--bind', `127.0.0.1:${port}`];
  if (opts.demo) serveArgs.push('--demo');
  const child = spawn(bin, serveArgs, {
    env,
    stdio: ['ignore', log, log],
  });
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  await until('souk /healthz', async () => {
    if (exited) throw new Error(`souk serve exited early (${JSON.stringify(exited)}); see artifacts/logs/${name}.log`);
    const r = await fetch(`${base}/healthz`);
    return r.ok;
  });
  const souk = {
    base,
    port,
    dataDir,
    admin: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
    /** Calls the REST API; returns the parsed JSON, throws on a non-2xx status. */
    async api(method, p, body, token) {
      const headers = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (token) headers.authorization = `Bearer ${token}`;
      const r = await fetch(`${base}${p}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${method} ${p} → ${r.status}: ${text}`);
      return text ? JSON.parse(text) : null;
    },
    /** Signs in through the REST API; returns the access token. */
    async login(email, password) {
      const t = await souk.api('POST', '/api/v1/auth/login', { email, password });
      return t.access_token;
    },
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await gone;
        clearTimeout(timer);
      }
      fs.closeSync(log);
      if (!process.env.SOUK_KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return souk;
}

/** Decodes a quoted-printable body (soft line breaks and =XX escapes). */
function decodeQuotedPrintable(s) {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/** The decoded text of every .eml in the outbox whose text mentions `to`. */
function outboxMails(dataDir, to) {
  const dir = path.join(dataDir, 'outbox');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .map((f) => {
      const raw = fs.readFileSync(path.join(dir, f), 'utf8');
      let text = decodeQuotedPrintable(raw);
      // Base64 parts: decode them too so links are found whatever the encoding.
      text += raw
        .split(/\r?\n\r?\n/)
        .filter((part) => /^[A-Za-z0-9+/=\r\n]{40,}$/.test(part.trim()))
        .map((part) => Buffer.from(part.replace(/\s+/g, ''), 'base64').toString('utf8'))
        .join('\n');
      return text;
    })
    .filter((t) => t.toLowerCase().includes(to.toLowerCase()));
}

/** Waits for an e-mail to `to` containing a link with `pathPart` and returns that URL. */
async function waitForMailLink(souk, to, pathPart) {
  return until(`an e-mail to ${to} with a ${pathPart} link`, () => {
    for (const text of outboxMails(souk.dataDir, to)) {
      const re = new RegExp(`https?://[^\\s"'<>]*${pathPart.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^\\s"'<>]*`);
      const m = text.match(re);
      if (m) return m[0];
    }
    return null;
  });
}

/** Launches Debian's chromium headless (no browser download). */
async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true });
}

/** Screenshots numbered in order under artifacts/screenshots/<test>/<nn-name>.png. */
function screenshots(test) {
  const dir = path.join(ARTIFACTS, 'screenshots', test);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, name) => {
    n += 1;
    const file = path.join(dir, `${String(n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    return file;
  };
}

/** Waits until `locator`'s text matches `re`; returns the text. */
async function waitForText(locator, re, timeout = TIMEOUT) {
  const target = locator.filter({ hasText: re }).first();
  await target.waitFor({ state: 'attached', timeout });
  return (await target.textContent()) || '';
}

/** Minimal RFC 4180 CSV parser (quoted fields, doubled quotes, newlines in quotes). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ''));
}

/** A subdomain no other test run uses. */
function uniqueHandle(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

/**
 * Creates a merchant through the admin REST API and activates it, then waits until its
 * provisioning completed. Returns the merchant JSON (with `handle`).
 */
async function provisionedMerchant(souk, adminToken, { name, ownerEmail, ownerName, subdomain, plan = 'starter' }) {
  const m = await souk.api(
    'POST',
    '/api/v1/admin/merchants',
    { name, owner_email: ownerEmail, owner_name: ownerName, subdomain },
    adminToken,
  );
  await souk.api('POST', `/api/v1/admin/merchants/${m.id}/activate`, { theme: 'classic', plan, subdomain }, adminToken);
  return until(`merchant ${name} active`, async () => {
    const cur = await souk.api('GET', `/api/v1/admin/merchants/${m.id}`, undefined, adminToken);
    if (cur.status === 'failed') throw new Error(`provisioning of ${name} failed`);
    return cur.status === 'active' ? cur : null;
  });
}

/** Signs in through `/{area}/login` (labels "E-mail", "Password", button "Sign in") and
 * waits until the browser left the sign-in form. */
async function signIn(page, base, area, email, password) {
  await page.goto(`${base}/${area}/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.endsWith('/login'));
}

/** Opens a page with its default timeout set. */
async function newPage(browser) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  return page;
}

/** The one-time token of a `...?token=` link. */
function tokenOf(link) {
  return new URL(link).searchParams.get('token');
}

module.exports = {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  ARTIFACTS,
  DATA,
  TIMEOUT,
  decodeQuotedPrintable,
  launchBrowser,
  newPage,
  signIn,
  tokenOf,
  outboxMails,
  parseCsv,
  provisionedMerchant,
  screenshots,
  startSouk,
  uniqueHandle,
  until,
  waitForMailLink,
  waitForText,
};
