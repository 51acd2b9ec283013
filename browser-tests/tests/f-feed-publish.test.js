// f) A merchant uploads a marketplace feed file on the Feeds page, selects a staged item,
// publishes it, and overrides its title; the feed's value stays visible beside the override.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const NAME = 'feed-publish';
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

const FEED = [
  'id;title;description;price;availability;image_link',
  'vase-1;Blue Vase;A blue vase;19.90 EUR;in stock;https://img.example/vase.png',
  'bowl-1;Red Bowl;A red bowl;abc EUR;in stock;https://img.example/bowl.png',
].join('\n') + '\n';

test('stage a feed, select and publish an item, override its title', async () => {
  const shot = h.screenshots(NAME);
  const adminToken = await souk.login(souk.admin.email, souk.admin.password);
  const ownerEmail = `owner-${Date.now()}@feeds.test`;
  const ownerPassword = 'Owner-Feeds-Passw0rd';
  await h.provisionedMerchant(souk, adminToken, {
    name: 'Browser Feed Shop',
    ownerEmail,
    ownerName: 'Fiona Feed',
    subdomain: h.uniqueHandle('feed'),
    plan: 'growth',
  });
  const welcome = await h.waitForMailLink(souk, ownerEmail, '/set-password?token=');
  await souk.api('POST', '/api/v1/auth/set-password', { token: h.tokenOf(welcome), password: ownerPassword });
  const ownerToken = await souk.login(ownerEmail, ownerPassword);
  await souk.api('POST', '/api/v1/feeds/sources', { marketplace: 'letzshop', files: [{ language: 'de' }] }, ownerToken);

  const page = await h.newPage(browser);
  try {
    await h.signIn(page, souk.base, 'dashboard', ownerEmail, ownerPassword);
    await page.goto(`${souk.base}/dashboard/feeds`);
    await page.getByLabel('Feed file (de)').setInputFiles({ name: 'de.csv', mimeType: 'text/csv', buffer: Buffer.from(FEED) });
    await shot(page, 'feeds-upload');
    await page.getByRole('button', { name: 'Upload and stage' }).click();
    await h.waitForText(page.locator('body'), /2 items \(2 new, 0 changed, 0 disappeared, 1 with errors\)/);
    await shot(page, 'feeds-staged');

    await page.goto(`${souk.base}/dashboard/feeds/items`);
    await h.waitForText(page.locator('body'), /has no number/);
    // Only items without errors can be selected.
    assert.equal(await page.getByRole('checkbox', { name: 'Select Red Bowl' }).count(), 0);
    await page.getByRole('checkbox', { name: 'Select Blue Vase' }).check();
    await shot(page, 'items-selected');
    await page.getByRole('button', { name: 'Publish selected' }).click();
    await h.waitForText(page.locator('body'), /1 product published/);

    await page.goto(`${souk.base}/dashboard/feeds/items?status=published`);
    await page.getByRole('link', { name: 'Blue Vase' }).click();
    await page.getByLabel('Title override').fill('Our Blue Vase');
    await page.getByRole('button', { name: 'Save overrides' }).click();
    await h.waitForText(page.locator('body'), /Overrides saved/);
    const row = page.getByRole('row').filter({ hasText: 'Title' }).first();
    await h.waitForText(row, /Blue Vase\s*Our Blue Vase/);
    await shot(page, 'override-saved');

    const products = await souk.api('GET', '/api/v1/products', undefined, ownerToken);
    assert.equal(products.data.length, 1);
    assert.equal(products.data[0].title, 'Our Blue Vase');
    assert.equal(products.data[0].variants[0].price.amount_minor, 1990);
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.context().close();
  }
});
