// Reference Claude Code channel server, written the documented way: one file
// on the official TypeScript MCP SDK (@modelcontextprotocol/sdk 1.x, low-level
// `Server` + `StdioServerTransport`, as Anthropic's channel plugins and the
// channels-reference page do). It is what `channel-bench` compares
// channel-plugin against, so it implements the same outside contract as
// `channel-plugin http` -- no more, no less:
//
//   discovery file $OPZERO_CHANNEL_DIR/$CLAUDE_CODE_SESSION_ID.json
//     = {port, secret, pid, sessionId, version, createdAt}   (mode 0600)
//   POST /inject  (Authorization: Bearer <secret>) {content, chat_id?, meta?} -> 202 {id}
//   GET  /sse     (Authorization: Bearer <secret>) -> `event: reply` per reply tool call
//   GET  /status  -> {ok: true}
//
// Plain JavaScript (ES module) so Node 20 and Bun run the *same* file with no
// build step. Under Bun the HTTP side uses `Bun.serve` (what Bun plugins use);
// under Node, `node:http`.
//
//   node server.mjs        bun server.mjs
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const NAME = process.env.CHANNEL_NAME || "opzero-channel";
const sessionId = process.env.OPZERO_CHANNEL_SESSION_ID || process.env.CLAUDE_CODE_SESSION_ID || randomUUID();
const dir = process.env.OPZERO_CHANNEL_DIR || join(homedir(), ".opzero-claude", "channels");
const secret = randomBytes(32).toString("hex");
const KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const mcp = new Server(
  { name: NAME, version: "0.0.1" },
  {
    capabilities: { experimental: { "claude/channel": {} }, tools: {} },
    instructions:
      `Messages from the web UI arrive as <channel source="${NAME}" chat_id="...">text</channel>. ` +
      "Answer them with the reply tool, passing the chat_id attribute.",
  },
);

mcp.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    {
      name: "reply",
      description: "Send a message back to the web UI chat the event came from.",
      inputSchema: {
        type: "object",
        properties: {
          text: { type: "string" },
          chat_id: { type: "string" },
          final: { type: "boolean" },
        },
        required: ["text"],
      },
    },
  ],
}));

// SSE clients: each is a function that writes one event.
const sseClients = new Set();
let nextReplyId = 0;
let nextEventId = 0;

mcp.setRequestHandler(CallToolRequestSchema, async (req) => {
  if (req.params.name !== "reply") throw new Error(`unknown tool ${req.params.name}`);
  const args = req.params.arguments ?? {};
  if (typeof args.text !== "string") {
    return { content: [{ type: "text", text: "reply needs a string `text`" }], isError: true };
  }
  const id = ++nextReplyId;
  const data = JSON.stringify({ text: args.text, chat_id: args.chat_id ?? null, final: args.final !== false });
  const frame = `id: ${id}\nevent: reply\ndata: ${data}\n\n`;
  for (const send of sseClients) send(frame);
  return { content: [{ type: "text", text: `sent to ${sseClients.size} client(s)` }] };
});

await mcp.connect(new StdioServerTransport());

// The /inject logic, shared by both HTTP front-ends: {status, body}.
async function inject(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return [400, { error: `body is not valid JSON: ${e.message}` }];
  }
  if (typeof body?.content !== "string" || body.content === "") return [400, { error: "missing content" }];
  const meta = { chat_id: typeof body.chat_id === "string" ? body.chat_id : "inject" };
  for (const [k, v] of Object.entries(body.meta ?? {})) {
    if (!KEY.test(k) || typeof v !== "string") return [400, { error: `invalid meta key ${k}` }];
    if (k !== "chat_id") meta[k] = v;
  }
  await mcp.notification({ method: "notifications/claude/channel", params: { content: body.content, meta } });
  return [202, { id: String(++nextEventId) }];
}

const authorized = (header) => header === `Bearer ${secret}`;
let port;

if (typeof Bun !== "undefined") {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/status") return Response.json({ ok: true, sessionId });
      if (!authorized(req.headers.get("authorization"))) return Response.json({ error: "unauthorized" }, { status: 401 });
      if (req.method === "POST" && url.pathname === "/inject") {
        const [status, body] = await inject(await req.text());
        return Response.json(body, { status });
      }
      if (req.method === "GET" && url.pathname === "/sse") {
        const enc = new TextEncoder();
        let send;
        const stream = new ReadableStream({
          start(controller) {
            send = (frame) => controller.enqueue(enc.encode(frame));
            sseClients.add(send);
            // Bun sends the response head with the first chunk: send a comment now.
            controller.enqueue(enc.encode(": connected\n\n"));
          },
          cancel() {
            sseClients.delete(send);
          },
        });
        return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
      }
      return Response.json({ error: "not found" }, { status: 404 });
    },
  });
  port = server.port;
} else {
  const http = await import("node:http");
  const server = http.createServer((req, res) => {
    if (req.url === "/status") return void res.end(JSON.stringify({ ok: true, sessionId }));
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, { "content-type": "application/json" });
      return void res.end('{"error":"unauthorized"}');
    }
    if (req.method === "POST" && req.url === "/inject") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", async () => {
        const [status, body] = await inject(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      });
      return;
    }
    if (req.method === "GET" && req.url === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      const send = (frame) => res.write(frame);
      sseClients.add(send);
      req.on("close", () => sseClients.delete(send));
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 0;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = server.address().port;
}

mkdirSync(dir, { recursive: true, mode: 0o700 });
const file = join(dir, `${sessionId}.json`);
const record = { port, secret, pid: process.pid, sessionId, version: "reference-ts", createdAt: new Date().toISOString() };
writeFileSync(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
renameSync(`${file}.tmp`, file);
console.error(`reference channel server on 127.0.0.1:${port} (${typeof Bun !== "undefined" ? "bun" : "node"})`);

const cleanup = () => {
  try {
    unlinkSync(file);
  } catch {}
  process.exit(0);
};
process.on("SIGINT", cleanup);
process.on("SIGTERM", cleanup);
process.stdin.on("end", cleanup);
