//! The inline `--mcp-config` JSON that points claude at our own binary.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

/// One stdio MCP server entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The key in `mcpServers`; claude calls the channel `server:<name>`.
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    /// Extra environment for the server process (claude merges it over its own).
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    /// `{"mcpServers":{"<name>":{"type":"stdio","command":…,"args":[…],"env":{…}}}}`
    pub fn to_inline_config(&self) -> String {
        let mut server = Map::new();
        server.insert("type".into(), json!("stdio"));
        server.insert(
            "command".into(),
            json!(self.command.to_string_lossy().into_owned()),
        );
        server.insert("args".into(), json!(self.args));
        if !self.env.is_empty() {
            let env: Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            server.insert("env".into(), Value::Object(env));
        }
        let mut servers = Map::new();
        servers.insert(self.name.clone(), Value::Object(server));
        json!({ "mcpServers": servers }).to_string()
    }
}

/// Server names become part of `server:<name>` and tool names; keep them to
/// what every Claude Code release accepts.
pub fn validate_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("server name {name:?} must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "server name {name:?} may contain only letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_config_is_the_shape_claude_reads() {
        let spec = ServerSpec {
            name: "channel".into(),
            command: "/opt/bin/channel-plugin".into(),
            args: vec!["http".into(), "--session-id".into(), "abc".into()],
            env: vec![("RUST_LOG".into(), "debug".into())],
        };
        let v: Value = serde_json::from_str(&spec.to_inline_config()).unwrap();
        assert_eq!(
            v,
            json!({"mcpServers":{"channel":{"type":"stdio","command":"/opt/bin/channel-plugin",
                "args":["http","--session-id","abc"],"env":{"RUST_LOG":"debug"}}}})
        );
    }

    #[test]
    fn names_are_checked() {
        validate_server_name("opzero-channel_1").unwrap();
        assert!(validate_server_name("a b").is_err());
        assert!(validate_server_name("").is_err());
        assert!(validate_server_name("x:y").is_err());
    }
}
