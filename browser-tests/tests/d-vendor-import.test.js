// d) A platform admin imports the Luxembourg vendor CSV, sees created and failed counts,
// and downloads the failed rows as CSV with an `error` column.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');

const NAME = 'vendor-import';
const CSV = path.join(h.DATA, 'vendors_lu_300.csv');
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

test('admin imports vendors and downloads the failed rows', { skip: fs.existsSync(CSV) ? false : `no sample file ${CSV}` }, async () => {
  const shot = h.screenshots(NAME);
  const page = await h.newPage(browser);
  try {
    await h.signIn(page, souk.base, 'admin', souk.admin.email, souk.admin.password);
    await page.goto(`${souk.base}/admin/imports/vendors`);
    await page.getByLabel('Vendor CSV file').waitFor();
    await shot(page, 'vendor-import-form');
    await page.getByLabel('Vendor CSV file').setInputFiles(CSV);
    await page.getByRole('button', { name: 'Import vendors' }).click();

    const text = await h.waitForText(page.locator('main'), /Created:\s*\d+[\s\S]*Failed:\s*\d+|Failed:\s*\d+[\s\S]*Created:\s*\d+/, 120000);
    const created = Number(text.match(/Created:\s*(\d+)/)[1]);
    const failed = Number(text.match(/Failed:\s*(\d+)/)[1]);
    const dataRows = h.parseCsv(fs.readFileSync(CSV, 'utf8')).length - 1;
    assert.ok(created > 0, `some vendors created (${created})`);
    assert.ok(failed > 0, `the file has invalid rows, some must fail (${failed})`);
    assert.equal(created + failed, dataRows, `created + failed = the ${dataRows} rows of the file`);
    await shot(page, 'vendor-import-result');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download failed rows (CSV)' }).or(page.getByRole('button', { name: 'Download failed rows (CSV)' })).first().click(),
    ]);
    const file = await download.path();
    const rows = h.parseCsv(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
    const [header, ...body] = rows;
    assert.ok(header.map((c) => c.trim().toLowerCase()).includes('error'), `header has an error column: ${header.join(',')}`);
    assert.equal(body.length, failed, `the download has one row per failed row (${failed})`);
    const errCol = header.map((c) => c.trim().toLowerCase()).indexOf('error');
    assert.ok(body.every((r) => (r[errCol] || '').trim().length > 0), 'every failed row says why');
    fs.mkdirSync(path.join(h.ARTIFACTS, 'downloads'), { recursive: true });
    await download.saveAs(path.join(h.ARTIFACTS, 'downloads', `${NAME}-${download.suggestedFilename() || 'failed.csv'}`));

    // The created vendors exist as merchants.
    const token = await souk.login(souk.admin.email, souk.admin.password);
    const list = await souk.api('GET', '/api/v1/admin/merchants?per_page=1', undefined, token);
    const total = list.pagination?.total ?? list.total;
    if (typeof total === 'number') assert.ok(total >= created, `merchants listed: ${total} ≥ ${created}`);
  } catch (e) {
    await shot(page, 'failure');
    throw e;
  } finally {
    await page.context().close();
  }
});
