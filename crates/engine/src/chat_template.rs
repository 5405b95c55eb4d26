//! Chat messages to a Gemma 3 prompt, via the GGUF's Jinja `tokenizer.chat_template`.
//!
//! The result keeps template text and message contents apart ([`PromptPart`]): the template is
//! rendered with every message content replaced by a one-character sentinel, and the output is
//! split on the sentinels. So a user who types `<start_of_turn>` gets text, never a control token
//! ([`crate::tokenizer::Tokenizer::encode_prompt`] parses control strings only in `Control` parts).

use crate::{EngineError, Result};
use candle_core::quantized::gguf_file;
use minijinja::{Environment, ErrorKind, Value};

const KEY_TEMPLATE: &str = "tokenizer.chat_template";
const TEMPLATE_NAME: &str = "chat_template";

/// Sentinel for message i is the code point `SENTINEL_BASE + i`, in Supplementary Private Use
/// Area-B: no template writes these, and contents never reach the template to collide with them.
const SENTINEL_BASE: u32 = 0x10_0000;
const SENTINEL_LAST: u32 = 0x10_FFFD;

/// Gemma 3's chat format (what its official template renders), used when the GGUF has none:
/// a leading system prompt is folded into the first turn, `assistant` is spelled `model`,
/// contents are trimmed. Unlike the official template it does not insist on strict
/// user/model alternation, and a system prompt with no turn after it still reaches the model.
const GEMMA3_TEMPLATE: &str = r#"{{ bos_token }}
{%- if messages and messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = (messages[0]['content'] | trim) + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- if not loop_messages and first_user_prefix -%}
    {{ '<start_of_turn>user\n' + (messages[0]['content'] | trim) + '<end_of_turn>\n' }}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if message['role'] == 'system' -%}
        {{ raise_exception('a system message is only supported as the first message') }}
    {%- endif -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{ '<start_of_turn>model\n' }}
{%- endif -%}
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name chat templates expect in `message['role']`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// The inverse of [`Role::as_str`] (stored messages keep their role as this text).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// A piece of a rendered prompt. `Control` is template-owned text, in which control-token strings
/// (`<start_of_turn>`) become control tokens; `Text` is a message content, always plain text.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptPart {
    Control(String),
    Text(String),
}

/// A compiled chat template plus the special-token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The GGUF's `tokenizer.chat_template`, or Gemma 3's format when it has none. The `bos_token`
    /// and `eos_token` the template sees are the vocabulary's pieces for the GGUF's bos/eos ids.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let (bos, eos) = special_pieces(content);
        match content.metadata.get(KEY_TEMPLATE) {
            None => Ok(Self::build(GEMMA3_TEMPLATE, bos, eos).expect("the built-in Gemma 3 template compiles")),
            Some(v) => {
                let source = v.to_string().map_err(|_| EngineError::Metadata {
                    key: KEY_TEMPLATE.into(),
                    reason: format!("is {:?}, not a string", v.value_type()),
                })?;
                Self::build(source, bos, eos)
                    .map_err(|e| EngineError::ChatTemplate(format!("cannot parse `{KEY_TEMPLATE}`: {e}")))
            }
        }
    }

    /// Gemma 3's chat format with `<bos>` / `<eos>`.
    pub fn gemma3_default() -> Self {
        Self::build(GEMMA3_TEMPLATE, "<bos>".into(), "<eos>".into()).expect("the built-in Gemma 3 template compiles")
    }

    /// A Jinja chat template given as source (e.g. a user override), with Gemma's `<bos>`/`<eos>`.
    pub fn from_source(source: &str) -> Result<Self> {
        Self::build(source, "<bos>".into(), "<eos>".into())
            .map_err(|e| EngineError::ChatTemplate(format!("cannot parse template: {e}")))
    }

    fn build(source: &str, bos_token: String, eos_token: String) -> std::result::Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        // Hugging Face renders chat templates with these two on; templates are written for them.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // `.strip()`, `.startswith()`, `.split()`... that Python-minded templates call.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())?;
        Ok(Self { env, bos_token, eos_token })
    }

    /// Renders the conversation. Template text comes back as `Control` parts, message contents as
    /// `Text` parts (empty contents are left out); adjacent template text is one part.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<Vec<PromptPart>> {
        self.render_with_images(messages, &[], 0, add_generation_prompt)
    }

    /// `render` with `images[i]` images at the start of message i's content (missing entries: none),
    /// each as `vision::image_prompt_text(tokens_per_image)`, template text like Gemma 3's
    /// processor writes it in place of the template's `<start_of_image>`.
    pub fn render_with_images(
        &self,
        messages: &[ChatMessage],
        images: &[usize],
        tokens_per_image: usize,
        add_generation_prompt: bool,
    ) -> Result<Vec<PromptPart>> {
        let groups: Vec<Vec<usize>> = images.iter().map(|&n| vec![0; n]).collect();
        self.render_with_image_groups(messages, &groups, tokens_per_image, add_generation_prompt)
    }

    /// `render_with_images` with Pan & Scan crops: `crops[i]` lists message i's images, each by
    /// how many crops follow it (0: the image alone), laid out as
    /// `vision::image_group_prompt_text` (the reference processor's wording). Every image and
    /// every crop takes `tokens_per_image` soft tokens, in that order: whole image, its crops,
    /// the next image.
    pub fn render_with_image_groups(
        &self,
        messages: &[ChatMessage],
        crops: &[Vec<usize>],
        tokens_per_image: usize,
        add_generation_prompt: bool,
    ) -> Result<Vec<PromptPart>> {
        let max = (SENTINEL_LAST - SENTINEL_BASE) as usize;
        if messages.len() > max {
            return Err(EngineError::InvalidArgument(format!(
                "{} messages in one conversation; at most {max} are supported",
                messages.len()
            )));
        }
        let sentinel = |i: usize| char::from_u32(SENTINEL_BASE + i as u32);
        let rendered_messages: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mark = sentinel(i).map(String::from).unwrap_or_default();
                minijinja::context! { role => m.role.as_str(), content => mark }
            })
            .collect();
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
        let out = template
            .render(minijinja::context! {
                messages => rendered_messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| EngineError::ChatTemplate(describe_render_error(&e)))?;

        let mut parts: Vec<PromptPart> = Vec::new();
        let mut control = String::new();
        for c in out.chars() {
            let code = c as u32;
            if (SENTINEL_BASE..SENTINEL_BASE + messages.len() as u32).contains(&code) {
                let i = (code - SENTINEL_BASE) as usize;
                for &n in crops.get(i).map_or(&[][..], Vec::as_slice) {
                    control.push_str(&crate::vision::image_group_prompt_text(n, tokens_per_image));
                }
                let content = &messages[i].content;
                // Gemma templates trim contents; the sentinel stood in for the content, so trim here.
                let content = content.trim();
                if !content.is_empty() {
                    if !control.is_empty() {
                        parts.push(PromptPart::Control(std::mem::take(&mut control)));
                    }
                    parts.push(PromptPart::Text(content.to_owned()));
                }
            } else if (SENTINEL_BASE..=SENTINEL_LAST).contains(&code) {
                return Err(EngineError::ChatTemplate(format!(
                    "template output contains U+{code:X}, a code point reserved for message contents"
                )));
            } else {
                control.push(c);
            }
        }
        if !control.is_empty() {
            parts.push(PromptPart::Control(control));
        }
        Ok(parts)
    }
}

/// minijinja's message already names the problem and where it is (template line), including the
/// text a template passes to `raise_exception`.
fn describe_render_error(e: &minijinja::Error) -> String {
    format!("cannot render: {e}")
}

/// The vocabulary's pieces for the bos/eos ids, defaulting to Gemma's spellings.
fn special_pieces(content: &gguf_file::Content) -> (String, String) {
    let tokens = content.metadata.get("tokenizer.ggml.tokens").and_then(|v| v.to_vec().ok());
    let piece = |key: &str, default: &str| -> String {
        let id = content.metadata.get(key).and_then(|v| v.to_u32().ok());
        match (tokens, id) {
            (Some(tokens), Some(id)) => {
                tokens.get(id as usize).and_then(|v| v.to_string().ok()).cloned().unwrap_or_else(|| default.to_owned())
            }
            _ => default.to_owned(),
        }
    };
    (piece("tokenizer.ggml.bos_token_id", "<bos>"), piece("tokenizer.ggml.eos_token_id", "<eos>"))
}
