// e) Accessibility: axe-core (WCAG 2 A and AA rules, colour contrast included) on every
// key page of the admin panel and the dashboard, the skip link as the first keyboard stop,
// and no sideways scrolling of the page at phone width (390 px).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('../lib/harness');

const NAME = 'accessibility';
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
let souk;
let browser;

before(async () => {
  souk = await h.startSouk(NAME);
  browser = await h.launchBrowser();
});

after(async () => {
  await browser?.close();
  await souk?.stop();
});

/** Serious and critical axe violations of the page, as readable lines. */
async function violations(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    // The branding preview shows the merchant's own storefront colours, not the UI's.
    axe.run({ exclude: [['#brand-preview']] }, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

async function check(page, base, path, problems, shot) {
  const res = await page.goto(base + path);
  assert.ok(res && res.status() < 500, `${path} answered ${res && res.status()}`);
  const title = await page.title();
  assert.ok(title && !/^\s*·/.test(title), `${path} has a meaningful <title>: "${title}"`);
  for (const v of await violations(page)) problems.push(`${path}: ${v}`);
  // The first Tab stop is the skip link (unless the page starts in a field: sign-in forms
  // autofocus their e-mail field).
  const focused = await page.evaluate(() => document.activeElement === document.body);
  if (focused) {
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement && document.activeElement.className);
    if (first !== 'skip-link') problems.push(`${path}: first Tab stop is "${first}", not the skip link`);
  }
  if (shot) await shot(page, path.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'root');
}

test('admin and dashboard pages pass axe (WCAG 2.1 A/AA) and work at phone width', async () => {
  const shot = h.screenshots(NAME);
  const adminToken = await souk.login(souk.admin.email, souk.admin.password);
  const pending = await souk.api(
    'POST',
    '/api/v1/admin/merchants',
    { name: 'A11y Pending', owner_email: `pending-${Date.now()}@a11y.test` },
    adminToken,
  );
  const ownerEmail = `owner-${Date.now()}@a11y.test`;
  const ownerPassword = 'Owner-A11y-Passw0rd';
  const subdomain = h.uniqueHandle('a11y');
  const shop = await h.provisionedMerchant(souk, adminToken, {
    name: 'A11y Shop',
    ownerEmail,
    ownerName: 'Ada Owner',
    subdomain,
    plan: 'growth',
  });
  const welcome = await h.waitForMailLink(souk, ownerEmail, '/set-password?token=');
  await souk.api('POST', '/api/v1/auth/set-password', { token: h.tokenOf(welcome), password: ownerPassword });
  const ownerToken = await souk.login(ownerEmail, ownerPassword);
  const product = await souk.api(
    'POST',
    '/api/v1/products',
    {
      title: 'Linen Shirt',
      handle: 'linen-shirt',
      status: 'active',
      options: ['Size'],
      variants: [{ sku: 'LIN-S', option_values: ['S'], price: '49.00', inventory_quantity: 3 }],
    },
    ownerToken,
  );

  // An order and a finished background import, for their pages.
  const order = await souk.api('POST', '/api/v1/orders', { line_items: [{ title: 'Gift card', price: '25.00' }] }, ownerToken);
  const started = await fetch(`${souk.base}/api/v1/imports/products?background=true&file_name=a11y.csv`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'text/csv' },
    body: 'Handle,Title,Variant Price\nlinen-scarf,Linen Scarf,19.00\nbad-price,Bad Price,abc\n',
  });
  assert.equal(started.status, 202, 'background import accepted');
  const importId = (await started.json()).id;
  for (let i = 0; i < 200; i += 1) {
    const st = await souk.api('GET', `/api/v1/imports/products/${importId}`, undefined, ownerToken);
    if (st.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const problems = [];
  const page = await h.newPage(browser);
  try {
    // Signed out.
    await check(page, souk.base, '/admin/login', problems, shot);
    await check(page, souk.base, '/dashboard/login', problems);
    await check(page, souk.base, `/set-password?token=${h.tokenOf(welcome)}`, problems);
    // Admin panel.
    await h.signIn(page, souk.base, 'admin', souk.admin.email, souk.admin.password);
    for (const path of [
      '/admin/overview',
      '/admin/merchants',
      `/admin/merchants/${pending.id}`,
      `/admin/merchants/${pending.id}/activate`,
      `/admin/merchants/${shop.id}`,
      `/admin/merchants/${shop.id}/provisioning`,
      '/admin/imports/vendors',
      '/admin/themes',
      '/admin/audit-log',
    ]) {
      await check(page, souk.base, path, problems, shot);
    }
    // Dashboard.
    const owner = await h.newPage(browser);
    await h.signIn(owner, souk.base, 'dashboard', ownerEmail, ownerPassword);
    for (const path of [
      '/dashboard',
      '/dashboard/onboarding/business',
      '/dashboard/onboarding/branding',
      '/dashboard/onboarding/payments',
      '/dashboard/onboarding/launch',
      '/dashboard/products',
      '/dashboard/products/new',
      `/dashboard/products/${product.id}`,
      '/dashboard/imports',
      `/dashboard/imports/${importId}`,
      '/dashboard/orders',
      `/dashboard/orders/${order.id}`,
      '/dashboard/team',
      '/dashboard/api-keys',
      '/dashboard/webhooks',
    ]) {
      await check(owner, souk.base, path, problems, shot);
    }
    // Layout defects once seen in Chromium: the password card squeezed to ~180 px
    // ("passwor d"), status pills and the Inventory header wrapping mid-word.
    await owner.goto(souk.base + '/dashboard/password');
    const cardWidth = await owner.evaluate(() => document.querySelector('main .card').getBoundingClientRect().width);
    if (cardWidth < 300) problems.push(`/dashboard/password: the card is only ${cardWidth}px wide`);
    await owner.goto(souk.base + '/dashboard/products');
    const wrapped = await owner.evaluate(() => [...document.querySelectorAll('.badge, th')]
      .filter((e) => {
        const r = document.createRange();
        r.selectNodeContents(e);
        const lines = new Set([...r.getClientRects()].map((b) => Math.round(b.top)));
        return lines.size > 1;
      })
      .map((e) => e.textContent.trim()));
    if (wrapped.length) problems.push(`/dashboard/products: wraps inside ${wrapped.join(', ')}`);
    // Phone width: the page itself never scrolls sideways (wide tables scroll in their box).
    const phone = async (p, paths) => {
      await p.setViewportSize({ width: 390, height: 844 });
      for (const path of paths) {
        await p.goto(souk.base + path);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        if (overflow > 1) problems.push(`${path}: scrolls sideways by ${overflow}px at 390px width`);
      }
    };
    await phone(owner, ['/dashboard', '/dashboard/products', `/dashboard/products/${product.id}`, '/dashboard/onboarding/branding', '/dashboard/team', '/dashboard/webhooks']);
    await phone(page, ['/admin/overview', '/admin/merchants', `/admin/merchants/${shop.id}`, '/admin/themes']);
    await shot(page, 'phone-admin-merchants');
    await shot(owner, 'phone-products');
    await owner.close();
    assert.deepEqual(problems, [], `accessibility problems:\n${problems.join('\n')}`);
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.close();
  }
});
