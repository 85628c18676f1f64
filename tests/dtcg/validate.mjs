// Validate a Design Tokens (DTCG) document with the reference parser, @terrazzo/parser.
// Usage: node validate.mjs NODE_MODULES_DIR FILE.json
// Prints {"tokens": N, "types": {...}} and exits 0 when the document parses with no error; exits 1 with the errors otherwise.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, file] = process.argv.slice(2);
const { defineConfig, parse, Logger } = await import(pathToFileURL(join(modules, "@terrazzo/parser/dist/index.js")));
const logger = new Logger({ level: "warn" });
const config = defineConfig({}, { logger, cwd: pathToFileURL(file) });
const src = await readFile(file, "utf8");
try {
  const { tokens } = await parse([{ filename: pathToFileURL(file), src }], { config, logger });
  const types = {};
  for (const token of Object.values(tokens)) {
    types[token.$type] = (types[token.$type] ?? 0) + 1;
  }
  if (logger.errorCount > 0) {
    process.exit(1);
  }
  console.log(JSON.stringify({ tokens: Object.keys(tokens).length, types, warnings: logger.warnCount }));
} catch (error) {
  console.error(String(error?.message ?? error));
  process.exit(1);
}
