//! The MCP core: stdio JSON-RPC session with Claude Code.
