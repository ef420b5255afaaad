// Mocha reporter: mocha's spec output, then one line "N passed, N failed" (the line CI
// reads), also written to $HARRIER_TEST_SUMMARY when set.
'use strict';
const fs = require('node:fs');
const Mocha = require('mocha');

class HarrierReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const s = runner.stats || { passes: 0, failures: 0, pending: 0 };
      const line = `${s.passes} passed, ${s.failures} failed` + (s.pending ? `, ${s.pending} skipped` : '');
      process.stdout.write(`\n${line}\n`);
      if (process.env.HARRIER_TEST_SUMMARY) fs.writeFileSync(process.env.HARRIER_TEST_SUMMARY, line + '\n');
    });
  }
}

module.exports = HarrierReporter;
