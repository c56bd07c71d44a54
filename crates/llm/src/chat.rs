//! How chat messages become a prompt.

use crate::types::{ChatMessage, Role};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The chat format of a model.
///
/// * `Auto` (default): the GGUF's own template when it has one; otherwise, for Gemma-family
///   architectures, llama.cpp's built-in `gemma` format (the format the DISCA authors' code used
///   on the default base model, so our numbers are comparable); otherwise `Plain`.
/// * `Template`: the GGUF's own template (error if it has none).
/// * `Builtin(name)`: one of llama.cpp's built-in formats by name (`gemma`, `chatml`, `llama3`, …).
/// * `Plain`: message contents joined by a blank line, nothing else — for base models.
///
/// Models whose format has no system role (Gemma) get the system text merged into the first user
/// turn, followed by a blank line (specs/disca.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ChatFormat {
    #[default]
    Auto,
    Template,
    Builtin(String),
    Plain,
}

impl fmt::Display for ChatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatFormat::Auto => f.write_str("auto"),
            ChatFormat::Template => f.write_str("template"),
            ChatFormat::Builtin(n) => write!(f, "builtin:{n}"),
            ChatFormat::Plain => f.write_str("plain"),
        }
    }
}

impl FromStr for ChatFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ChatFormat::Auto),
            "template" => Ok(ChatFormat::Template),
            "plain" => Ok(ChatFormat::Plain),
            other => {
                let name = other.strip_prefix("builtin:").unwrap_or(other);
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    Err(format!("unknown chat format {other:?} (auto, template, plain or a llama.cpp template name such as gemma, chatml, llama3)"))
                } else {
                    Ok(ChatFormat::Builtin(name.to_string()))
                }
            }
        }
    }
}

/// The `Plain` format.
pub fn render_plain(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The Gemma turn format (llama.cpp's built-in `gemma`), rendered by us so that the user turn
/// stays verbatim: `<start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n` per user turn,
/// `<start_of_turn>model\n{text}<end_of_turn>\n` per assistant turn, then the open
/// `<start_of_turn>model\n`. llama.cpp's renderer trims every message, which drops the trailing
/// space of an answer cue such as "Choice: "; the DISCA authors insert their user text after
/// the template is rendered, so it keeps that space (specs/disca.md §2.3). System and assistant
/// texts are trimmed as the model's own template does. The BOS token is added at tokenisation.
pub fn render_gemma(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    let mut pending: Vec<&str> = Vec::new();
    for m in messages {
        match m.role {
            Role::System => pending.push(m.content.trim()),
            Role::User => {
                out.push_str("<start_of_turn>user\n");
                for s in pending.drain(..) {
                    out.push_str(s);
                    out.push_str("\n\n");
                }
                out.push_str(&m.content);
                out.push_str("<end_of_turn>\n");
            }
            Role::Assistant => {
                out.push_str("<start_of_turn>model\n");
                out.push_str(m.content.trim());
                out.push_str("<end_of_turn>\n");
            }
        }
    }
    if !pending.is_empty() {
        out.push_str("<start_of_turn>user\n");
        out.push_str(&pending.join("\n\n"));
        out.push_str("<end_of_turn>\n");
    }
    out.push_str("<start_of_turn>model\n");
    out
}

/// Folds system messages into the first following user turn ("{system}\n\n{user}"), for
/// formats without a system role.
pub fn merge_system_into_user(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(messages.len());
    let mut pending: Vec<&str> = Vec::new();
    for m in messages {
        match m.role {
            Role::System => pending.push(&m.content),
            Role::User if !pending.is_empty() => {
                let sys = pending.join("\n\n");
                pending.clear();
                out.push(ChatMessage::user(format!("{sys}\n\n{}", m.content)));
            }
            _ => out.push(m.clone()),
        }
    }
    if !pending.is_empty() {
        out.push(ChatMessage::user(pending.join("\n\n")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_formats() {
        assert_eq!("auto".parse::<ChatFormat>().unwrap(), ChatFormat::Auto);
        assert_eq!(
            "gemma".parse::<ChatFormat>().unwrap(),
            ChatFormat::Builtin("gemma".into())
        );
        assert_eq!(
            "builtin:chatml".parse::<ChatFormat>().unwrap(),
            ChatFormat::Builtin("chatml".into())
        );
        assert!("bad format!".parse::<ChatFormat>().is_err());
    }

    #[test]
    fn system_merges_into_user() {
        let m = merge_system_into_user(&[ChatMessage::system("S"), ChatMessage::user("U")]);
        assert_eq!(m, vec![ChatMessage::user("S\n\nU")]);
        assert_eq!(
            render_plain(&[ChatMessage::system("S"), ChatMessage::user("U")]),
            "S\n\nU"
        );
    }
}
