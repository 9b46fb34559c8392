// Test-only stand-in for Prisma's native query engine (5.17.0, commit 393aa359).
//
// prisma-client-py 0.15.0 speaks the engine's HTTP API with the GraphQL protocol. The native
// binary cannot be downloaded in our sandbox, but the same engine core ships on npm as a wasm
// build that only accepts the JSON protocol and talks to the database through JS driver
// adapters. This server bridges the two: it parses the GraphQL subset emitted by
// prisma/_builder.py, turns it into JSON-protocol requests, and turns the answers back into
// the shapes the GraphQL protocol returned. See README.md.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bindAdapter } from '@prisma/driver-adapter-utils';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- configuration
function parseArgs(argv) {
  let port = 4466;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-p' || argv[i] === '--port') port = Number(argv[++i]);
  }
  return { port };
}

function loadDatamodel() {
  if (process.env.PRISMA_DML_PATH) return readFileSync(process.env.PRISMA_DML_PATH, 'utf8');
  const dml = process.env.PRISMA_DML;
  if (!dml) throw new Error('PRISMA_DML_PATH or PRISMA_DML must be set');
  // The native engine takes PRISMA_DML base64-encoded; accept plain text too.
  return /\b(model|datasource|generator)\b/.test(dml) ? dml : Buffer.from(dml, 'base64').toString('utf8');
}

// Just enough schema knowledge to tag typed input values: model -> field -> type name.
function parseSchema(dml) {
  const blocks = [...dml.matchAll(/^\s*(model|datasource|enum|type)\s+(\w+)\s*\{([\s\S]*?)^\s*\}/gm)];
  const models = {};
  let provider = null;
  let url = null;
  for (const [, kind, name, body] of blocks) {
    if (kind === 'datasource') {
      provider = /provider\s*=\s*"([^"]+)"/.exec(body)?.[1] ?? null;
      const lit = /\burl\s*=\s*"([^"]*)"/.exec(body);
      const env = /\burl\s*=\s*env\(\s*"([^"]+)"\s*\)/.exec(body);
      url = lit ? lit[1] : env ? process.env[env[1]] ?? null : null;
    } else if (kind === 'model') models[name] = {};
  }
  for (const [, kind, name, body] of blocks) {
    if (kind !== 'model') continue;
    for (const line of body.split('\n')) {
      const m = /^\s*(\w+)\s+(\w+)(\[\])?\??/.exec(line.replace(/\/\/.*$/, ''));
      if (!m || line.trim().startsWith('@@')) continue;
      models[name][m[1]] = { type: m[2], relation: m[2] in models };
    }
  }
  return { models, provider, url };
}

function datasourceUrl(schema) {
  if (process.env.OVERWRITE_DATASOURCES) {
    const list = JSON.parse(process.env.OVERWRITE_DATASOURCES);
    if (list.length && list[0].url) return list[0].url;
  }
  if (!schema.url) throw new Error('no datasource url: set OVERWRITE_DATASOURCES or the env var named in the schema');
  return schema.url;
}

async function makeAdapter(provider, url) {
  if (provider === 'sqlite') {
    const { createClient } = await import('@libsql/client');
    const { PrismaLibSQL } = await import('@prisma/adapter-libsql');
    let file = url.replace(/^(file:|sqlite:)/, '');
    if (!file.startsWith('/')) file = path.resolve(path.dirname(process.env.PRISMA_DML_PATH ?? '.'), file);
    return { adapter: new PrismaLibSQL(createClient({ url: `file:${file}` })), close: async () => {} };
  }
  if (provider === 'postgresql' || provider === 'postgres') {
    const pg = (await import('pg')).default;
    const { PrismaPg } = await import('@prisma/adapter-pg');
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    return { adapter: new PrismaPg(pool), close: () => pool.end() };
  }
  throw new Error(`unsupported provider ${provider}`);
}

// The published package imports its .wasm as an ES module, which Node cannot do without
// flags, so instantiate it by hand against the generated bindings.
async function loadEngineModule(provider) {
  const dir = path.join(path.dirname(require.resolve('@prisma/query-engine-wasm/package.json')),
    provider === 'postgres' ? 'postgresql' : provider);
  const bg = await import(pathToFileURL(path.join(dir, 'query_engine_bg.js')).href);
  const { instance } = await WebAssembly.instantiate(readFileSync(path.join(dir, 'query_engine_bg.wasm')),
    { './query_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  return bg;
}

// ---------------------------------------------------------------- GraphQL subset -> JSON protocol
function tokenize(src) {
  const tokens = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/[\s,]/.test(c)) { i++; continue; }
    if ('{}()[]:'.includes(c)) { tokens.push({ p: c }); i++; continue; }
    if (c === '"') {
      let j = i + 1;
      while (src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      tokens.push({ v: JSON.parse(src.slice(i, j + 1)) });
      i = j + 1;
      continue;
    }
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|[A-Za-z_]\w*)/.exec(src.slice(i, i + 400));
    if (!m) throw new Error(`cannot parse query near: ${src.slice(i, i + 40)}`);
    const w = m[0];
    if (/^-?\d/.test(w)) tokens.push({ v: Number(w) });
    else if (w === 'true' || w === 'false') tokens.push({ v: w === 'true' });
    else if (w === 'null') tokens.push({ v: null });
    else tokens.push({ n: w });
    i += w.length;
  }
  return tokens;
}

function parseGraphQL(src) {
  const t = tokenize(src);
  let k = 0;
  const peek = (p) => t[k] && t[k].p === p;
  const expect = (p) => { if (!peek(p)) throw new Error(`expected ${p}`); k++; };
  const value = () => {
    if (peek('{')) { k++; const o = {}; while (!peek('}')) { const key = t[k++].n; expect(':'); o[key] = value(); } k++; return o; }
    if (peek('[')) { k++; const a = []; while (!peek(']')) a.push(value()); k++; return a; }
    const tok = t[k++];
    return 'v' in tok ? tok.v : tok.n; // a bare name is an enum literal
  };
  const args = () => { const o = {}; expect('('); while (!peek(')')) { const key = t[k++].n; expect(':'); o[key] = value(); } k++; return o; };
  const selection = () => {
    const out = {};
    expect('{');
    while (!peek('}')) {
      const name = t[k++].n;
      const a = peek('(') ? args() : null;
      const sub = peek('{') ? selection() : null;
      out[name] = a || sub ? { ...(a ? { arguments: a } : {}), selection: sub ?? {} } : true;
    }
    k++;
    return out;
  };
  k++; // query | mutation
  expect('{');
  if (t[k + 1] && t[k + 1].p === ':') k += 2; // "result:" alias
  const field = t[k++].n;
  const a = peek('(') ? args() : {};
  const sel = peek('{') ? selection() : {};
  return { field, args: a, selection: sel };
}

const ACTIONS = ['findUnique', 'findFirst', 'findMany', 'createOne', 'createMany', 'updateOne', 'updateMany',
  'deleteOne', 'deleteMany', 'upsertOne', 'aggregate', 'groupBy'];
const TAGGED = new Set(['Json', 'DateTime', 'BigInt', 'Decimal', 'Bytes']);
// Argument keys whose values name fields instead of carrying field values.
const NOT_VALUES = new Set(['orderBy', 'by', 'distinct', 'select', 'include']);
const JSON_VALUE_OPS = new Set(['set', 'equals', 'not', 'array_contains', 'array_starts_with', 'array_ends_with']);

function tagScalar(v, type) {
  if (typeof v === 'string' || (type === 'BigInt' && typeof v === 'number')) return { $type: type, value: String(v) };
  if (Array.isArray(v)) return v.map((x) => tagScalar(x, type));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [op, x] of Object.entries(v)) {
      out[op] = op === 'mode' || op === 'path' || (type === 'Json' && !JSON_VALUE_OPS.has(op)) ? x : tagScalar(x, type);
    }
    return out;
  }
  return v;
}

// Walks input arguments alongside the schema: a relation field switches the current model,
// a typed scalar field gets its value tagged, anything else (where/data/connect wrappers,
// AND/OR, compound-unique keys) keeps the current model.
function tagInput(v, model, models) {
  if (Array.isArray(v)) return v.map((x) => tagInput(x, model, models));
  if (!v || typeof v !== 'object') return v;
  const fields = models[model] ?? {};
  const out = {};
  for (const [key, x] of Object.entries(v)) {
    const f = fields[key];
    if (NOT_VALUES.has(key)) out[key] = x;
    else if (f && f.relation) out[key] = tagInput(x, f.type, models);
    else if (f && TAGGED.has(f.type)) out[key] = tagScalar(x, f.type);
    else out[key] = tagInput(x, model, models);
  }
  return out;
}

function toJsonProtocol(gql, schema) {
  const { field, args, selection } = gql;
  if (field === 'queryRaw' || field === 'executeRaw') {
    return { action: field, query: { arguments: { query: args.query, parameters: args.parameters ?? '[]' }, selection: {} } };
  }
  for (const action of [...ACTIONS].sort((a, b) => b.length - a.length)) {
    if (!field.startsWith(action)) continue;
    let modelName = field.slice(action.length);
    let act = action;
    if (modelName.endsWith('OrThrow') && !(modelName in schema.models)) {
      modelName = modelName.slice(0, -'OrThrow'.length);
      act = `${action}OrThrow`;
    }
    if (!(modelName in schema.models)) continue;
    const tagSelection = (sel, model) => {
      const out = {};
      for (const [k, s] of Object.entries(sel)) {
        if (s === true) { out[k] = true; continue; }
        const rel = schema.models[model]?.[k];
        const sub = rel && rel.relation ? rel.type : model;
        out[k] = { ...(s.arguments ? { arguments: tagInput(s.arguments, sub, schema.models) } : {}), selection: tagSelection(s.selection, sub) };
      }
      return out;
    };
    return { modelName, action: act, query: { arguments: tagInput(args, modelName, schema.models), selection: tagSelection(selection, modelName) } };
  }
  throw new Error(`unsupported operation ${field}`);
}

// Typed JSON-protocol values back to what the GraphQL protocol returned: DateTime as ISO text,
// Json as JSON-encoded text (prisma-client-py decodes it), BigInt/Decimal as text, Bytes as base64.
function untag(v) {
  if (Array.isArray(v)) return v.map(untag);
  if (!v || typeof v !== 'object') return v;
  if (typeof v.$type === 'string' && 'value' in v && Object.keys(v).length === 2) return v.value;
  const out = {};
  for (const [k, x] of Object.entries(v)) out[k] = untag(x);
  return out;
}

// Raw query rows are already plain values in both protocols; leave user JSON in them alone.
function toGraphQLResponse(text, action) {
  const res = JSON.parse(text);
  if (res.errors) return { errors: res.errors };
  const value = Object.values(res.data ?? {})[0] ?? null;
  return { data: { result: action === 'queryRaw' || action === 'executeRaw' ? value : untag(value) } };
}

// Failures of the stand-in itself carry no Prisma error code, so the client raises a plain
// DataError with our message instead of mistaking them for a database error.
function errorBody(err) {
  const message = `query-engine stand-in: ${err?.message ?? err}`;
  return { errors: [{ error: message, user_facing_error: { is_panic: false, message, meta: {} } }] };
}

// ---------------------------------------------------------------- HTTP server
async function main() {
  const { port } = parseArgs(process.argv.slice(2));
  const datamodel = loadDatamodel();
  const schema = parseSchema(datamodel);
  const provider = schema.provider;
  const { adapter, close } = await makeAdapter(provider, datasourceUrl(schema));
  const wasm = await loadEngineModule(provider);
  const logQueries = Boolean(process.env.LOG_QUERIES);
  const engine = new wasm.QueryEngine({
    datamodel, logLevel: 'error', logQueries, env: { ...process.env }, ignoreEnvVarErrors: true,
    datasourceOverrides: {}, configDir: path.dirname(process.env.PRISMA_DML_PATH ?? here), engineProtocol: 'json',
  }, (line) => { if (logQueries) process.stderr.write(`${line}\n`); }, bindAdapter(adapter));
  await engine.connect('{}');

  const translate = (gqlText) => toJsonProtocol(parseGraphQL(gqlText), schema);

  async function handle(method, url, body, txId) {
    if (method === 'GET' && url === '/status') return { status: 'ok' };
    if (url.startsWith('/metrics')) {
      const format = new URL(url, 'http://x').searchParams.get('format') ?? 'json';
      try {
        return JSON.parse(await engine.metrics(JSON.stringify({ format, globalLabels: body ? JSON.parse(body) : {} })));
      } catch {
        // The wasm build has no metrics recorder; answer with an empty snapshot.
        return format === 'json' ? { counters: [], gauges: [], histograms: [] } : '';
      }
    }
    if (method !== 'POST') return null;
    if (url === '/transaction/start') return JSON.parse(await engine.startTransaction(body || '{}', '{}'));
    const m = /^\/transaction\/([^/]+)\/(commit|rollback)$/.exec(url);
    if (m) {
      const out = JSON.parse(await (m[2] === 'commit' ? engine.commitTransaction(m[1], '{}') : engine.rollbackTransaction(m[1], '{}')));
      return out.errors ? out : {};
    }
    if (url !== '/') return null;
    const req = JSON.parse(body);
    if (req.batch) {
      const batch = req.batch.map((q) => translate(q.query));
      const jsonBatch = { batch, transaction: req.transaction ? {} : undefined };
      const res = JSON.parse(await engine.query(JSON.stringify(jsonBatch), '{}', txId));
      if (res.errors) return { errors: res.errors };
      return { batchResult: res.batchResult.map((r, i) => (r.errors ? r : toGraphQLResponse(JSON.stringify(r), batch[i].action))) };
    }
    const query = translate(req.query);
    return toGraphQLResponse(await engine.query(JSON.stringify(query), '{}', txId), query.action);
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let out;
      try {
        out = await handle(req.method, req.url, Buffer.concat(chunks).toString('utf8'), req.headers['x-transaction-id'] || undefined);
      } catch (err) {
        out = errorBody(err);
      }
      if (out === null) { res.writeHead(404).end(); return; }
      const text = typeof out === 'string' ? out : JSON.stringify(out);
      res.writeHead(200, { 'content-type': typeof out === 'string' ? 'text/plain' : 'application/json' }).end(text);
    });
  });
  server.listen(port, '127.0.0.1');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.close();
    try { await engine.disconnect('{}'); await close(); } finally { process.exit(0); }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`query-engine stand-in failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
