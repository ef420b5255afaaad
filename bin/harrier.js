#!/usr/bin/env node
'use strict';
const { main } = require('../dist/src/cli.js');
main(process.argv.slice(2)).then(
  (code) => { if (code !== 0) process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : err); process.exitCode = 1; },
);
