// Copies the non-TypeScript files the server loads at run time (Redis Lua scripts) into dist/.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src/broker/redis');
const to = join(root, 'dist/broker/redis');
mkdirSync(to, { recursive: true });
for (const file of readdirSync(from).filter((f) => f.endsWith('.lua'))) cpSync(join(from, file), join(to, file));
