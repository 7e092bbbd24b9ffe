// Drives channel-plugin with the official TypeScript MCP SDK, as a foreign
// client would. Run by plugin/tests/interop_ts_sdk.rs:
//
//   node client.mjs <channel-plugin binary> [plugin args...]
//
// Progress goes to stdout as one JSON object per line ({"step": ...}) so the
// Rust test can follow along and inject over HTTP at the right moment.
// After the reply it waits for a line on stdin, then closes the session.
// Exits 0 on success, 1 with {"step":"error"} otherwise.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [binary, ...args] = process.argv.slice(2);
const report = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));
const fail = (message) => {
  report("error", { message: String(message) });
  process.exit(1);
};
const timer = setTimeout(() => fail("timed out after 60 s"), 60_000);

try {
  const transport = new StdioClientTransport({
    command: binary,
    args,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "channel_plugin=debug" },
    stderr: "inherit",
  });
  const client = new Client({ name: "interop-ts-sdk", version: "1.0.0" }, { capabilities: {} });

  // Channel notifications are not part of the SDK's schema: they land here.
  let resolveChannel;
  const channel = new Promise((resolve) => (resolveChannel = resolve));
  client.fallbackNotificationHandler = async (notification) => {
    report("notification_seen", { method: notification.method });
    if (notification.method === "notifications/claude/channel") resolveChannel(notification);
  };

  await client.connect(transport);
  report("connected", {
    serverVersion: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions(),
  });

  const { tools } = await client.listTools();
  report("tools", { tools });

  const notification = await channel;
  report("notification", { params: notification.params });

  const chatId = notification.params?.meta?.chat_id;
  const result = await client.callTool({
    name: "reply",
    arguments: { text: `ack: ${notification.params.content}`, chat_id: chatId },
  });
  report("reply", { result });

  const bad = await client.callTool({ name: "reply", arguments: { chat_id: chatId } });
  report("bad_reply", { result: bad });

  // Keep the session (and so the plugin) alive until the test has checked
  // the HTTP side; it writes a line to our stdin when done.
  report("waiting_for_close");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.pause();
  await client.close();
  clearTimeout(timer);
  report("closed");
} catch (err) {
  fail(err?.stack ?? err);
}
