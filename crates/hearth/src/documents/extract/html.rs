//! HTML's visible text through `html5ever`'s tokenizer. No tree is built: a document nested
//! 200,000 elements deep costs no more than a flat one (a tree builder walks the stack of open
//! elements for every tag). Scripts, styles, templates, `noscript` and comments are dropped;
//! block elements end lines so paragraphs survive.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use html5ever::TokenizerResult;

use super::text;
use crate::documents::Result;

pub fn extract(bytes: &[u8], what: &str) -> Result<String> {
    let source = text::decode(bytes, what)?;
    let sink = VisibleText::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(&source));
    // `feed` stops early only to hand a script to a tree builder; this sink never asks it to.
    while let TokenizerResult::Script(()) = tokenizer.feed(&input) {}
    tokenizer.end();
    let out = tokenizer.sink.state.take();
    Ok(out.text)
}

#[derive(Default)]
struct VisibleText {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    text: String,
    /// Inside script/style/noscript/template (counted: templates nest).
    hidden: usize,
    /// Inside `pre`: whitespace is kept as written.
    pre: usize,
}

impl State {
    fn push_text(&mut self, s: &str) {
        if self.pre > 0 {
            self.text.push_str(s);
            return;
        }
        for (i, word) in s.split(|c: char| c.is_ascii_whitespace()).enumerate() {
            let at_break = self.text.is_empty() || self.text.ends_with(['\n', ' ']);
            if i > 0 && !at_break {
                self.text.push(' ');
            }
            self.text.push_str(word);
        }
    }

    fn break_line(&mut self, blank: bool) {
        while self.text.ends_with(' ') {
            self.text.pop();
        }
        let want = if blank { "\n\n" } else { "\n" };
        if !self.text.is_empty() && !self.text.ends_with(want) {
            self.text.push('\n');
            if blank && !self.text.ends_with("\n\n") {
                self.text.push('\n');
            }
        }
    }
}

/// Elements whose content is not shown.
const HIDDEN: &[&str] = &["script", "style", "noscript", "template"];
/// Elements that start a paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
    "hr",
    "title",
    "details",
    "summary",
];
/// Elements that start a line.
const LINES: &[&str] = &["br", "li", "tr", "dt", "dd", "option", "caption"];

impl TokenSink for VisibleText {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut st = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let name: &str = &tag.name;
                let hidden = HIDDEN.contains(&name);
                match tag.kind {
                    TagKind::StartTag => {
                        if hidden && !tag.self_closing {
                            st.hidden += 1;
                            return match name {
                                "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                                "style" | "noscript" => TokenSinkResult::RawData(RawKind::Rawtext),
                                _ => TokenSinkResult::Continue,
                            };
                        }
                        if name == "title" || name == "textarea" {
                            st.break_line(true);
                            return TokenSinkResult::RawData(RawKind::Rcdata);
                        }
                        if name == "pre" {
                            st.pre += 1;
                        }
                    }
                    TagKind::EndTag => {
                        if hidden {
                            st.hidden = st.hidden.saturating_sub(1);
                            return TokenSinkResult::Continue;
                        }
                        if name == "pre" {
                            st.pre = st.pre.saturating_sub(1);
                        }
                    }
                }
                if st.hidden == 0 {
                    if BLOCKS.contains(&name) {
                        st.break_line(true);
                    } else if LINES.contains(&name) {
                        st.break_line(false);
                    } else if matches!(name, "td" | "th") {
                        st.push_text(" ");
                    }
                }
            }
            Token::CharacterTokens(s) if st.hidden == 0 => st.push_text(&s),
            // Comments, doctypes, NULs and parse errors are not text.
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_only() {
        let html = b"<html><head><title>T</title><style>p{}</style></head><body><!-- c --><p>a <b>b</b></p>\
                     <script>var x = '<p>no</p>';</script><div>c</div></body></html>";
        let text = extract(html, "f").unwrap();
        assert_eq!(crate::documents::extract::tidy(&text), "T\n\na b\n\nc");
    }
}
