/** Writes docs/config.md from the config declarations (src/config/schema.ts). `npm run docs:config`. */
import { writeFileSync } from 'node:fs';
import { renderConfigDocs } from '../src/config/docs.js';

writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDocs());
process.stdout.write('wrote docs/config.md\n');
