//! Full-text search over message text and conversation titles, in Korean and English.
//!
//! FTS5's tokenizers fit Korean badly: `unicode61` splits only at spaces, so `회의` does not
//! find `회의록` (meeting minutes: noun + attached suffix), and `trigram` needs three or more
//! characters. So the index holds a derived text built here: words of alphabetic scripts as
//! themselves (queried by prefix), and every run of Hangul/CJK/kana as its overlapping
//! character bigrams followed by its last character alone. A Korean query becomes the phrase of
//! its bigrams: `회의` finds `회의록`, `정기회의` and `회의`; `서울` finds `서울의`; one syllable
//! is a prefix query. The closing unigram keeps phrases from matching across word boundaries.
//! Snippets are cut from the original text here, as the index holds no original text.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{ConversationId, MessageId, Result, Role, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub conversation_id: ConversationId,
    pub conversation_title: String,
    /// `None` when the conversation's title matched.
    pub message_id: Option<MessageId>,
    pub role: Option<Role>,
    /// A short excerpt around the first match, matches wrapped in the highlight markers.
    pub snippet: String,
    /// bm25 score; lower is better. Comparable only within title hits or within message hits.
    pub score: f64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// At most this many title hits and this many message hits.
    pub limit: u32,
    pub highlight_open: String,
    pub highlight_close: String,
    /// Characters of context around the first match.
    pub snippet_chars: usize,
    /// bm25 ranks at most this many of the newest matching messages. A word found in tens of
    /// thousands of messages would otherwise be scored in full on every keystroke; among the
    /// newest few thousand is where a person looks anyway.
    pub rank_window: u32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            limit: 20,
            highlight_open: "<mark>".into(),
            highlight_close: "</mark>".into(),
            snippet_chars: 80,
            rank_window: 5000,
        }
    }
}

/// Scripts written without spaces between words, or with particles glued to words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF     // Hangul Jamo
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3130..=0x318F   // Hangul compatibility Jamo
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xA960..=0xA97F   // Hangul Jamo extended A
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xD7B0..=0xD7FF   // Hangul Jamo extended B
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0x20000..=0x2FFFF)
}

/// One character lower-cased, keeping a 1:1 mapping so snippet offsets line up.
fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

#[derive(Debug, PartialEq)]
enum Run {
    Word(String),
    Cjk(Vec<char>),
}

/// Splits text into runs of word characters and runs of CJK characters; everything else
/// separates.
fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    for c in text.chars().map(fold) {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(Run::Word(std::mem::take(&mut word)));
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                out.push(Run::Cjk(std::mem::take(&mut cjk)));
            }
            word.push(c);
        } else {
            if !word.is_empty() {
                out.push(Run::Word(std::mem::take(&mut word)));
            }
            if !cjk.is_empty() {
                out.push(Run::Cjk(std::mem::take(&mut cjk)));
            }
        }
    }
    if !word.is_empty() {
        out.push(Run::Word(word));
    }
    if !cjk.is_empty() {
        out.push(Run::Cjk(cjk));
    }
    out
}

/// The text stored in the FTS index for `text` (see the module comment).
pub fn index_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for run in runs(text) {
        match run {
            Run::Word(w) => {
                out.push_str(&w);
                out.push(' ');
            }
            Run::Cjk(cs) => {
                for pair in cs.windows(2) {
                    out.push(pair[0]);
                    out.push(pair[1]);
                    out.push(' ');
                }
                if let Some(last) = cs.last() {
                    out.push(*last);
                    out.push(' ');
                }
            }
        }
    }
    out
}

/// The FTS5 MATCH expression for a user's query: every word must match (AND). `None` when the
/// query has no searchable characters. Tokens hold only alphanumeric characters, so quoting them
/// is safe: FTS5 syntax in user input is never interpreted.
pub fn match_expression(query: &str) -> Option<String> {
    let mut terms = Vec::new();
    for run in runs(query) {
        match run {
            Run::Word(w) => terms.push(format!("\"{w}\"*")),
            Run::Cjk(cs) if cs.len() == 1 => terms.push(format!("\"{}\"*", cs[0])),
            Run::Cjk(cs) => {
                let bigrams: Vec<String> = cs.windows(2).map(|p| p.iter().collect()).collect();
                terms.push(format!("\"{}\"", bigrams.join(" ")));
            }
        }
    }
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" AND "))
    }
}

/// Cuts an excerpt of `text` around the first place a query term matches, wrapping every match
/// inside it in the markers. Word terms match at word starts and highlight to the word's end,
/// like the prefix query; CJK terms match anywhere.
pub fn snippet(text: &str, query: &str, opts: &SearchOptions) -> String {
    let chars: Vec<char> = text.chars().collect();
    let folded: Vec<char> = chars.iter().map(|c| fold(*c)).collect();
    let terms: Vec<(Vec<char>, bool)> = runs(query)
        .into_iter()
        .map(|r| match r {
            Run::Word(w) => (w.chars().collect(), true),
            Run::Cjk(cs) => (cs, false),
        })
        .collect();

    // Every match as a [start, end) range of character indices.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (term, is_word) in &terms {
        if term.is_empty() || term.len() > folded.len() {
            continue;
        }
        let mut i = 0;
        while i + term.len() <= folded.len() {
            if folded[i..i + term.len()] == term[..] {
                let at_word_start = i == 0 || !is_word_char(folded[i - 1]);
                if !*is_word || at_word_start {
                    let mut end = i + term.len();
                    if *is_word {
                        while end < folded.len() && is_word_char(folded[end]) {
                            end += 1;
                        }
                    }
                    spans.push((i, end));
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }

    let first = merged.first().map(|s| s.0).unwrap_or(0);
    let lead = opts.snippet_chars / 4;
    let start = first.saturating_sub(lead);
    let end = (start + opts.snippet_chars).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut pos = start;
    for (s, e) in merged.iter().copied() {
        if e <= start || s >= end {
            continue;
        }
        let (s, e) = (s.max(start), e.min(end));
        out.extend(chars[pos..s].iter().map(|c| flatten(*c)));
        out.push_str(&opts.highlight_open);
        out.extend(chars[s..e].iter().map(|c| flatten(*c)));
        out.push_str(&opts.highlight_close);
        pos = e;
    }
    out.extend(chars[pos..end].iter().map(|c| flatten(*c)));
    if end < chars.len() {
        out.push('…');
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Snippets are one line.
fn flatten(c: char) -> char {
    if c.is_whitespace() {
        ' '
    } else {
        c
    }
}

impl Store {
    /// Searches conversation titles and message text. Title hits come first, each group ranked
    /// by bm25 (best first; messages among the newest `rank_window` matches). Archived
    /// conversations are included.
    pub async fn search(&self, query: &str, opts: &SearchOptions) -> Result<Vec<SearchHit>> {
        let Some(expr) = match_expression(query) else {
            return Err(StoreError::EmptyQuery(query.to_string()));
        };
        let limit = i64::from(opts.limit.max(1));
        let mut hits = Vec::new();

        let rows = sqlx::query(
            "SELECT c.id, c.title, c.created_at, f.score
             FROM (SELECT rowid, bm25(titles_fts) AS score FROM titles_fts
                   WHERE titles_fts MATCH ?1 ORDER BY score LIMIT ?2) f
             JOIN conversations c ON c.id = f.rowid
             ORDER BY f.score",
        )
        .bind(&expr)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        for r in rows {
            let title: String = r.try_get(1).map_err(|e| self.err(e))?;
            hits.push(SearchHit {
                conversation_id: r.try_get(0).map_err(|e| self.err(e))?,
                snippet: snippet(&title, query, opts),
                conversation_title: title,
                message_id: None,
                role: None,
                score: r.try_get(3).map_err(|e| self.err(e))?,
                created_at: r.try_get(2).map_err(|e| self.err(e))?,
            });
        }

        let rows = sqlx::query(
            "SELECT m.id, m.conversation_id, m.role, m.content, m.created_at, c.title, f.score
             FROM (SELECT rowid, score FROM
                     (SELECT rowid, bm25(messages_fts) AS score FROM messages_fts
                      WHERE messages_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?3)
                   ORDER BY score LIMIT ?2) f
             JOIN messages m ON m.id = f.rowid
             JOIN conversations c ON c.id = m.conversation_id
             ORDER BY f.score",
        )
        .bind(&expr)
        .bind(limit)
        .bind(i64::from(opts.rank_window.max(opts.limit).max(1)))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        for r in rows {
            let content: String = r.try_get(3).map_err(|e| self.err(e))?;
            let role: String = r.try_get(2).map_err(|e| self.err(e))?;
            hits.push(SearchHit {
                conversation_id: r.try_get(1).map_err(|e| self.err(e))?,
                conversation_title: r.try_get(5).map_err(|e| self.err(e))?,
                message_id: Some(r.try_get(0).map_err(|e| self.err(e))?),
                role: Role::parse(&role),
                snippet: snippet(&content, query, opts),
                score: r.try_get(6).map_err(|e| self.err(e))?,
                created_at: r.try_get(4).map_err(|e| self.err(e))?,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_runs_become_bigrams_with_a_closing_unigram() {
        assert_eq!(index_text("오늘 회의록 정리"), "오늘 늘 회의 의록 록 정리 리 ");
        assert_eq!(index_text("Hello, 서울의 GPT4는"), "hello 서울 울의 의 gpt4 는 ");
    }

    #[test]
    fn queries_quote_tokens_and_neutralise_fts_syntax() {
        assert_eq!(match_expression("회의").as_deref(), Some("\"회의\""));
        assert_eq!(match_expression("회의록").as_deref(), Some("\"회의 의록\""));
        assert_eq!(match_expression("Meet 집").as_deref(), Some("\"meet\"* AND \"집\"*"));
        assert_eq!(match_expression("\"a\" OR NEAR(").as_deref(), Some("\"a\"* AND \"or\"* AND \"near\"*"));
        assert_eq!(match_expression("  ?! "), None);
    }

    #[test]
    fn snippets_highlight_prefix_words_and_korean_substrings() {
        let o = SearchOptions { highlight_open: "[".into(), highlight_close: "]".into(), ..Default::default() };
        assert_eq!(snippet("The Meeting notes", "meet", &o), "The [Meeting] notes");
        assert_eq!(snippet("오늘 정기회의록 정리", "회의", &o), "오늘 정기[회의]록 정리");
        let long = format!("{} 서울의 밤", "가".repeat(100));
        let s = snippet(&long, "서울", &o);
        assert!(s.starts_with('…') && s.contains("[서울]의"), "{s}");
    }
}
