// The JS side of the cross-client test (test infrastructure only): @node-llm/orm 0.8.0 on
// @node-llm/core 1.17.1 and Prisma 7 with its better-sqlite3 / pg driver adapters, in their
// default set-up. A scripted provider stands in for the LLM.
//
//   node client.mjs < request.json > result.json
//
// request: {"client": <generated Prisma client dir>, "orm": <transpiled orm index.js>,
//           "provider": "sqlite" | "postgresql", "url": <file path or connection string>,
//           "steps": [ {"do": ..., ...}, ... ]}
// Steps run in order on one PrismaClient; the result is {"results": [<one per step>]}.
//   {"do": "ddl", "sql": "..."}                     run DDL statements (split on ';' lines)
//   {"do": "create", "instructions": "...", "model": "...", "provider": "..."} -> {"chatId"}
//   {"do": "ask" | "stream", "chatId", "message", "script": [reply...], "tool": bool}
//        -> {"sent": [[{role, content}...] per provider call], "message": <row>}
//   {"do": "createSession" | "sessionAsk", "sessionId"?, "message", "script"} -> {...}
//   {"do": "read", "chatId"} -> every row of the chat in each table, and chat.messages()
// "chatId": "$chat" names the chat an earlier "create" step made.
// A reply is {"content": "...", "toolCalls": [{"name": "...", "arguments": {...}}]}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Agent, BaseProvider, NodeLLM, createLLM } from "@node-llm/core";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";

const request = JSON.parse(readFileSync(0, "utf8"));
const { PrismaClient } = (await import(pathToFileURL(join(request.client, "index.js")).href)).default;
const orm = await import(pathToFileURL(request.orm).href);

// Each provider call takes the next scripted reply and records the messages it was sent.
const state = { script: [], sent: [], calls: 0 };

class ScriptedProvider extends BaseProvider {
  apiBase() {
    return "scripted://local";
  }
  headers() {
    return {};
  }
  providerName() {
    return "fake";
  }
  defaultModel() {
    return "fake-model";
  }
  capabilities = {
    ...this.defaultCapabilities(),
    supportsTools: () => true,
    getContextWindow: () => 100000
  };
  next(request) {
    state.sent.push(request.messages.map((m) => ({ role: m.role, content: m.content ?? null })));
    const reply = state.script.shift();
    if (!reply) throw new Error("scripted provider: no reply left");
    const toolCalls = (reply.toolCalls || []).map((call) => ({
      id: `js_call_${++state.calls}`,
      type: "function",
      function: { name: call.name, arguments: JSON.stringify(call.arguments || {}) }
    }));
    const usage = { input_tokens: 3, output_tokens: 2, total_tokens: 5 };
    return { reply, toolCalls, usage };
  }
  async chat(request) {
    const { reply, toolCalls, usage } = this.next(request);
    return {
      content: reply.content ?? null,
      tool_calls: toolCalls.length ? toolCalls : undefined,
      usage,
      finish_reason: toolCalls.length ? "tool_calls" : "stop"
    };
  }
  async *stream(request) {
    const { reply, toolCalls, usage } = this.next(request);
    const text = reply.content ?? "";
    for (let i = 0; i < text.length; i += 4) yield { content: text.slice(i, i + 4) };
    yield { content: "", tool_calls: toolCalls.length ? toolCalls : undefined, usage, done: true };
  }
}

const provider = new ScriptedProvider();
NodeLLM.registerProvider("fake", () => provider);
const llm = createLLM({ provider: "fake", defaultChatModel: "fake-model" });

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  },
  handler: async ({ city }) => `Sunny in ${city}`
};

class Helper extends Agent {
  static instructions = "Help.";
  static model = "fake-model";
}

const adapter =
  request.provider === "sqlite"
    ? new PrismaBetterSqlite3({ url: `file:${request.url}` })
    : new PrismaPg({ connectionString: request.url });
const prisma = new PrismaClient({ adapter });

function plain(value) {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
}

async function turn(step) {
  state.script = [...(step.script || [])];
  state.sent = [];
  let message;
  if (step.do === "ask" || step.do === "stream") {
    const chat = await orm.loadChat(prisma, llm, step.chatId);
    if (!chat) throw new Error(`no chat ${step.chatId}`);
    if (step.tool) chat.withTool(weather);
    if (step.do === "ask") {
      message = await chat.ask(step.message);
    } else {
      const stream = chat.askStream(step.message);
      let next = await stream.next();
      while (!next.done) next = await stream.next();
      message = next.value;
    }
  } else if (step.do === "createSession") {
    const session = await orm.createAgentSession(prisma, llm, Helper, { metadata: step.metadata });
    message = await session.ask(step.message);
    return { sessionId: session.id, chatId: session.chatId, sent: state.sent, message };
  } else {
    const session = await orm.loadAgentSession(prisma, llm, Helper, step.sessionId);
    if (!session) throw new Error(`no session ${step.sessionId}`);
    message = await session.ask(step.message);
  }
  if (state.script.length) throw new Error(`unused scripted replies: ${state.script.length}`);
  return { sent: state.sent, message };
}

async function read(step) {
  const chat = await orm.loadChat(prisma, llm, step.chatId);
  const record = await prisma.llmChat.findUnique({ where: { id: step.chatId } });
  const messages = await chat.messages();
  const ids = messages.map((m) => m.id);
  return {
    chat: record,
    messages,
    toolCalls: await prisma.llmToolCall.findMany({
      where: { messageId: { in: ids } },
      orderBy: { createdAt: "asc" }
    }),
    requests: await prisma.llmRequest.findMany({
      where: { chatId: step.chatId },
      orderBy: { createdAt: "asc" }
    }),
    sessions: await prisma.llmAgentSession.findMany({ where: { chatId: step.chatId } })
  };
}

const results = [];
let created = null; // "$chat" in a later step names the chat a "create" step made
try {
  for (const step of request.steps) {
    if (step.chatId === "$chat") step.chatId = created;
    if (step.do === "ddl") {
      for (const statement of step.sql.split(/;\s*\n/)) {
        const body = statement
          .split("\n")
          .filter((line) => !line.trim().startsWith("--"))
          .join("\n")
          .trim();
        if (body) await prisma.$executeRawUnsafe(body);
      }
      results.push({});
    } else if (step.do === "create") {
      const chat = await orm.createChat(prisma, llm, {
        instructions: step.instructions,
        model: step.model,
        provider: step.provider,
        metadata: step.metadata
      });
      created = chat.id;
      results.push({ chatId: chat.id });
    } else if (step.do === "read") {
      results.push(await read(step));
    } else {
      results.push(await turn(step));
    }
  }
} finally {
  await prisma.$disconnect();
}
process.stdout.write(JSON.stringify(plain({ results })));
