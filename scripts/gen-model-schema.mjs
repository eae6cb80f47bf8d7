#!/usr/bin/env node
// Writes src/pipeline/model-schema.json: the JSON Schema of bkci's zod pipeline model (per step
// type, and the top level), produced by zod itself. `pipeline validate` checks a pipeline against
// it first and loads zod only when something fails, for zod's messages. A test fails when this
// file is out of date: run `npm run gen:model-schema` after changing src/pipeline/model.ts.
// The file is written as Prettier formats it, so `npm run lint` accepts it as generated.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { modelJsonSchemas } from '../dist/pipeline/model.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'src/pipeline/model-schema.json');
const options = (await prettier.resolveConfig(file)) ?? {};
writeFileSync(file, await prettier.format(JSON.stringify(modelJsonSchemas(), null, 2), { ...options, filepath: file }));
