// f) The owner sets up shipping and a discount in the dashboard: creates a shipping zone,
// adds a rate to it (decimal price), then creates a discount code, all through the plain
// forms, and the API shows what was saved.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const NAME = 'checkout-admin';
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

test('the owner creates a shipping zone with a rate and a discount code in the dashboard', async () => {
  const shot = h.screenshots(NAME);
  const adminToken = await souk.login(souk.admin.email, souk.admin.password);
  const ownerEmail = `owner-${Date.now()}@checkout.test`;
  const ownerPassword = 'Owner-Browser-Passw0rd';
  await h.provisionedMerchant(souk, adminToken, {
    name: 'Browser Checkout Shop',
    ownerEmail,
    ownerName: 'Olga Owner',
    subdomain: h.uniqueHandle('chk'),
    plan: 'growth',
  });
  const welcome = await h.waitForMailLink(souk, ownerEmail, '/set-password?token=');
  await souk.api('POST', '/api/v1/auth/set-password', { token: h.tokenOf(welcome), password: ownerPassword });
  const ownerToken = await souk.login(ownerEmail, ownerPassword);

  const page = await h.newPage(browser);
  try {
    await h.signIn(page, souk.base, 'dashboard', ownerEmail, ownerPassword);
    await page.goto(`${souk.base}/dashboard`);
    await page.getByRole('link', { name: 'Shipping', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/dashboard/shipping');
    await page.getByLabel('Zone name').fill('Benelux');
    await page.getByLabel('Countries').fill('LU, BE, NL');
    await shot(page, 'new-zone');
    await page.getByRole('button', { name: 'Add zone' }).click();
    await page.waitForURL((u) => /^\/dashboard\/shipping\/[0-9a-f-]+$/.test(u.pathname));
    await page.getByRole('heading', { name: 'Benelux' }).waitFor();

    const rate = page.getByRole('form', { name: 'New rate' });
    await rate.getByLabel('Rate name').fill('Standard');
    await rate.getByLabel('Price (EUR)').fill('4.90');
    await rate.getByLabel('Free from (EUR)').fill('50');
    await rate.getByRole('button', { name: 'Add rate' }).click();
    await h.waitForText(page.locator('body'), /Rate added/);
    await shot(page, 'zone-with-rate');

    const zones = await souk.api('GET', '/api/v1/shipping-zones', undefined, ownerToken);
    assert.equal(zones.length, 1);
    assert.deepEqual(zones[0].countries, ['LU', 'BE', 'NL']);
    assert.equal(zones[0].rates[0].price_minor, 490);
    assert.equal(zones[0].rates[0].free_over_minor, 5000);

    await page.getByRole('link', { name: 'Discounts', exact: true }).click();
    await page.getByRole('link', { name: 'New discount code' }).click();
    await page.getByLabel('Code').fill('spring10');
    await page.getByLabel('Type').selectOption('percentage');
    await page.getByLabel('Value').fill('10');
    await shot(page, 'new-discount');
    await page.getByRole('button', { name: 'Save discount code' }).click();
    await h.waitForText(page.locator('body'), /Discount code saved/);
    await page.getByRole('heading', { name: /SPRING10/ }).waitFor();
    await shot(page, 'discount-saved');

    const codes = await souk.api('GET', '/api/v1/discount-codes?q=SPRING10', undefined, ownerToken);
    assert.equal(codes.data.length, 1);
    assert.equal(codes.data[0].kind, 'percentage');
    assert.equal(codes.data[0].value, 1000);
    assert.equal(codes.data[0].active, true);
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.context().close();
  }
});
