// Prepare a working directory for client.mjs (test infrastructure only):
//   node build.mjs <workdir>
// 1. transpiles @node-llm/orm's published TypeScript sources (its npm tarball ships no dist/)
//    to <workdir>/orm/, as any user of that version must;
// 2. links <workdir>/node_modules to this folder's, so the transpiled files and the generated
//    Prisma clients resolve @node-llm/core, @prisma/client and the adapters from the lockfile.
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const work = process.argv[2];
if (!work) {
  console.error("usage: node build.mjs <workdir>");
  process.exit(2);
}
mkdirSync(work, { recursive: true });
const link = join(work, "node_modules");
if (!existsSync(link)) symlinkSync(join(here, "node_modules"), link, "dir");

const src = join(here, "node_modules", "@node-llm", "orm", "src");
const out = join(work, "orm");
const options = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  // The sources use `useDefineForClassFields` semantics of their tsconfig (ES2022 target).
  useDefineForClassFields: true,
  verbatimModuleSyntax: false,
  isolatedModules: true
};

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      walk(path);
    } else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) {
      const result = ts.transpileModule(readFileSync(path, "utf8"), {
        compilerOptions: options,
        fileName: name,
        reportDiagnostics: true
      });
      if (result.diagnostics?.length) {
        throw new Error(`${path}: ${ts.flattenDiagnosticMessageText(result.diagnostics[0].messageText, "\n")}`);
      }
      const target = join(out, relative(src, path)).replace(/\.ts$/, ".js");
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, result.outputText);
    }
  }
}
walk(src);
writeFileSync(join(out, "package.json"), JSON.stringify({ type: "module" }));
console.log(JSON.stringify({ orm: join(out, "adapters", "prisma", "index.js") }));
