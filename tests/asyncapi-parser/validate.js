// Parses each AsyncAPI document given on the command line with the official parser and prints its
// diagnostics as JSON, one object per document; exits 1 when any document has an error.
'use strict';
const fs = require('fs');
const path = require('path');
const { Parser } = require('@asyncapi/parser');

const SEVERITY = ['error', 'warning', 'info', 'hint'];

async function main(files) {
  const parser = new Parser();
  let failed = false;
  const results = [];
  for (const file of files) {
    const source = path.resolve(file);
    const { diagnostics } = await parser.parse(fs.readFileSync(source, 'utf8'), { source });
    const found = diagnostics.map((d) => ({
      severity: SEVERITY[d.severity] || String(d.severity),
      code: d.code,
      message: d.message,
      path: d.path.join('/'),
    }));
    const errors = found.filter((d) => d.severity === 'error');
    failed = failed || errors.length > 0;
    results.push({ file, errors, others: found.filter((d) => d.severity !== 'error') });
  }
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  process.exitCode = failed ? 1 : 0;
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exitCode = 2;
});
