// b) A new merchant's owner follows the welcome e-mail, sets a password, signs in, walks
// through the onboarding wizard, imports a Shopify CSV and sees its products on the
// storefront.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');

const NAME = 'owner-onboarding';
const CSV = path.join(h.DATA, 'shopify_apparel.csv');
const WIZARD_STEPS = ['business', 'branding', 'payments', 'marketing', 'products', 'website', 'launch'];
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

/** Product titles of a Shopify CSV (rows that start a product carry the title). */
function csvTitles(file) {
  const [header, ...rows] = h.parseCsv(fs.readFileSync(file, 'utf8'));
  const t = header.indexOf('Title');
  return [...new Set(rows.map((r) => (r[t] || '').trim()).filter(Boolean))];
}

const FIRST_PRODUCT = 'Browser Welcome Tee';

/** Waits until `main` shows `re`, or fails with the alert/field errors the page shows. */
async function outcome(page, re, what) {
  const ok = page.locator('main').filter({ hasText: re }).first();
  const bad = page.locator('main [role="alert"]:not([hidden]), main .error:not([hidden])').filter({ hasText: /\S/ }).first();
  await Promise.race([ok.waitFor(), bad.waitFor()]);
  if (!(await ok.isVisible().catch(() => false)) && (await bad.count()) > 0) {
    const errors = await page.locator('main [role="alert"]:not([hidden]), main .error:not([hidden])').allTextContents();
    throw new Error(`${what} refused: ${errors.map((e) => e.trim()).filter(Boolean).join(' | ')}`);
  }
}

/** Fills the visible required fields the wizard left empty, by type, so "Save and
 * continue" can pass whatever the step asks. */
async function fillRequiredBlanks(page, ownerEmail) {
  const fields = page.locator('main input[required]:visible, main textarea[required]:visible, main select[required]:visible');
  const n = await fields.count();
  for (let i = 0; i < n; i += 1) {
    const f = fields.nth(i);
    const tag = await f.evaluate((el) => el.tagName.toLowerCase());
    const type = (await f.getAttribute('type')) || 'text';
    if (tag === 'select') {
      if (!(await f.inputValue())) {
        const values = await f.locator('option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
        if (values.length) await f.selectOption(values[0]);
      }
      continue;
    }
    if (['radio', 'checkbox'].includes(type)) {
      const name = await f.getAttribute('name');
      const group = page.locator(`main input[name="${name}"]:checked`);
      if ((await group.count()) === 0) await f.check();
      continue;
    }
    if (['hidden', 'file', 'submit', 'color'].includes(type) || (await f.inputValue())) continue;
    const value = {
      email: ownerEmail,
      tel: '+352 621 000 000',
      url: 'https://example.com',
      number: '1',
    }[type] || 'Browser Test';
    await f.fill(value);
  }
}

test('owner sets a password, onboards, imports a CSV and sees the storefront', { skip: fs.existsSync(CSV) ? false : `no sample file ${CSV}` }, async () => {
  const shot = h.screenshots(NAME);
  const adminToken = await souk.login(souk.admin.email, souk.admin.password);
  const ownerEmail = `owner-${Date.now()}@onboarding.test`;
  const ownerPassword = 'Owner-Browser-Passw0rd';
  const subdomain = h.uniqueHandle('onb');
  // Growth: the plan with the imports feature.
  await h.provisionedMerchant(souk, adminToken, {
    name: 'Browser Onboarding Shop',
    ownerEmail,
    ownerName: 'Olive Owner',
    subdomain,
    plan: 'growth',
  });
  const link = await h.waitForMailLink(souk, ownerEmail, '/set-password?token=');
  assert.ok(h.tokenOf(link), `welcome link carries a token: ${link}`);

  const page = await h.newPage(browser);
  try {
    // Welcome e-mail → set password → sign in.
    await page.goto(link);
    await page.getByLabel('New password').fill(ownerPassword);
    await shot(page, 'set-password');
    await page.getByRole('button', { name: 'Set password' }).click();
    const toSignIn = page.getByRole('link', { name: 'Sign in to your dashboard' });
    await toSignIn.waitFor();
    await shot(page, 'password-set');
    await toSignIn.click();
    await page.waitForURL(/\/dashboard\/login/);
    await page.getByLabel('E-mail').fill(ownerEmail);
    await page.getByLabel('Password').fill(ownerPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname.startsWith('/dashboard') && !u.pathname.endsWith('/login'));
    await shot(page, 'signed-in');

    // Onboarding wizard: every step saves and moves on; payments picks bank transfer.
    await page.goto(`${souk.base}/dashboard/onboarding`);
    const publish = page.getByRole('button', { name: 'Publish storefront' });
    const saveAndContinue = page.getByRole('button', { name: 'Save and continue' });
    const seen = [];
    for (let guard = 0; guard < WIZARD_STEPS.length + 3; guard += 1) {
      await Promise.race([publish.waitFor(), saveAndContinue.waitFor()]);
      const url = page.url();
      const step = WIZARD_STEPS.find((s) => url.includes(s)) || `step-${guard + 1}`;
      seen.push(step);
      await fillRequiredBlanks(page, ownerEmail);
      const bank = page.getByLabel('Bank transfer / cash on delivery');
      if ((await bank.count()) > 0) {
        await bank.first().check();
        seen.push('bank-transfer-chosen');
        // Manual payments need instructions for the customers.
        const instructions = page.getByLabel(/Payment instructions/);
        if ((await instructions.count()) > 0 && !(await instructions.first().inputValue())) {
          await instructions.first().fill('IBAN LU28 0019 4006 4475 0000, reference: your order number. Cash on delivery accepted.');
        }
      }
      // Publishing needs an active product: add the first one in the products step.
      const firstTitle = page.getByLabel('Product title');
      if ((await firstTitle.count()) > 0 && (await page.getByRole('button', { name: 'Add product' }).count()) > 0) {
        await firstTitle.fill(FIRST_PRODUCT);
        await page.getByLabel(/^Price/).fill('19.90');
        await page.getByRole('button', { name: 'Add product' }).click();
        await outcome(page, new RegExp(FIRST_PRODUCT), `adding the first product in step ${step}`);
        seen.push('first-product-added');
      }
      if (step === 'branding') {
        // The live preview is the real storefront in an iframe: shoot it once rendered.
        await h.waitForText(page.frameLocator('#brand-preview').locator('body'), /\S/);
      }
      await shot(page, `wizard-${step}`);
      if (await publish.isVisible()) {
        await publish.click();
        await outcome(page, /Your storefront is published/i, 'publishing');
        break;
      }
      const before = page.url();
      const heading = (await page.locator('main h1, main h2').first().textContent().catch(() => '')) || '';
      await saveAndContinue.click();
      // Moved on (new URL or new heading), or an error is shown (then fail with it).
      await page.waitForFunction(
        ([u, hd]) => {
          const h2 = document.querySelector('main h1, main h2');
          const err = document.querySelector('main .error:not([hidden]), main [role="alert"]');
          return location.href !== u || (h2 && h2.textContent !== hd) || (err && err.textContent.trim());
        },
        [before, heading],
      );
      const err = page.locator('main .error:not([hidden]), main [role="alert"]');
      if ((await err.count()) > 0 && (await err.first().textContent()).trim()) {
        throw new Error(`wizard step ${step} refused: ${(await err.allTextContents()).join(' | ')}`);
      }
    }
    assert.ok(seen.includes('bank-transfer-chosen'), `payments offered "Bank transfer / cash on delivery" (${seen.join(', ')})`);
    await shot(page, 'published');
    const merchantNow = await souk.api('GET', '/api/v1/admin/merchants?q=' + subdomain, undefined, adminToken);
    assert.ok(merchantNow.data.some((m) => m.handle === subdomain), 'merchant still listed');

    // Product import: upload, preview, confirm.
    await page.goto(`${souk.base}/dashboard/imports`);
    await page.getByLabel('CSV file', { exact: true }).setInputFiles(CSV);
    await page.getByRole('button', { name: 'Upload and preview' }).click();
    const confirm = page.getByRole('button', { name: 'Confirm import' });
    await confirm.waitFor();
    await shot(page, 'import-preview');
    await confirm.click();
    const resultText = await h.waitForText(page.locator('main'), /Created:\s*\d+/);
    const created = Number(resultText.match(/Created:\s*(\d+)/)[1]);
    const titles = csvTitles(CSV);
    assert.equal(created, titles.length, `created ${created} of the ${titles.length} CSV products`);
    await shot(page, 'import-done');

    // The storefront lists the imported products (12 per page, newest first).
    await page.goto(`${souk.base}/s/${subdomain}/products`);
    const body = await page.locator('body').innerText();
    const shown = titles.filter((t) => body.includes(t));
    assert.ok(
      shown.length >= Math.min(12, titles.length),
      `storefront shows CSV titles (${shown.length} of ${titles.length}): ${body.slice(0, 400)}`,
    );
    await shot(page, 'storefront');
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.context().close();
  }
});
