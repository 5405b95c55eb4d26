//! Cutting a text into chunks that each fit a token budget: on paragraph boundaries, then
//! sentence boundaries, then between words, and only as a last resort inside a word. Consecutive
//! chunks share a small overlap (their boundary paragraph or sentence, when it is short), and
//! together they cover every character: chunk `i + 1` starts at or before chunk `i`'s end.

use std::ops::Range;

use crate::error::HearthResult;

/// Anything that counts tokens the way the model will: the GGUF's tokenizer, or the runtime's
/// loaded model.
pub trait CountTokens {
    fn count_tokens(&self, text: &str) -> HearthResult<usize>;
}

impl CountTokens for engine::tokenizer::Tokenizer {
    fn count_tokens(&self, text: &str) -> HearthResult<usize> {
        Ok(self.encode(text, false)?.len())
    }
}

impl CountTokens for crate::runtime::Runtime {
    fn count_tokens(&self, text: &str) -> HearthResult<usize> {
        crate::runtime::Runtime::count_tokens(self, text)
    }
}

/// A chunk in byte offsets into the text, with its exact token count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteChunk {
    pub range: Range<usize>,
    pub tokens: usize,
}

/// Chunks of `text`, each at most `budget` tokens (counted whole, exactly), overlapping by one
/// boundary unit of at most `overlap` tokens.
pub fn cut(text: &str, budget: usize, overlap: usize, counter: &dyn CountTokens) -> HearthResult<Vec<ByteChunk>> {
    let budget = budget.max(1);
    let mut units: Vec<(Range<usize>, usize)> = Vec::new();
    for para in split_keep(text, 0..text.len(), Level::Paragraph) {
        push_fitting(text, para, Level::Paragraph, budget, counter, &mut units)?;
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i;
        let mut sum = 0;
        while j < units.len() && (j == i || sum + units[j].1 <= budget) {
            sum += units[j].1;
            j += 1;
        }
        // Token counts do not add exactly across joins; count the chunk itself and give back
        // units until it fits.
        let mut tokens = counter.count_tokens(&text[units[i].0.start..units[j - 1].0.end])?;
        while tokens > budget && j - 1 > i {
            j -= 1;
            tokens = counter.count_tokens(&text[units[i].0.start..units[j - 1].0.end])?;
        }
        chunks.push(ByteChunk { range: units[i].0.start..units[j - 1].0.end, tokens });
        if j == units.len() {
            break;
        }
        // Overlap: the next chunk starts again at this one's last unit when that is short and
        // leaves room to move forward.
        i = if j - 1 > i && units[j - 1].1 <= overlap { j - 1 } else { j };
    }
    Ok(chunks)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    Paragraph,
    Sentence,
    Word,
}

impl Level {
    fn finer(self) -> Option<Level> {
        match self {
            Level::Paragraph => Some(Level::Sentence),
            Level::Sentence => Some(Level::Word),
            Level::Word => None,
        }
    }
}

/// Adds `range` as one unit if it fits, else its pieces at the next finer level.
fn push_fitting(
    text: &str,
    range: Range<usize>,
    level: Level,
    budget: usize,
    counter: &dyn CountTokens,
    units: &mut Vec<(Range<usize>, usize)>,
) -> HearthResult<()> {
    let tokens = counter.count_tokens(&text[range.clone()])?;
    if tokens <= budget {
        units.push((range, tokens));
        return Ok(());
    }
    match level.finer() {
        Some(finer) => {
            let pieces = split_keep(text, range.clone(), finer);
            if pieces.len() <= 1 {
                return push_fitting(text, range, finer, budget, counter, units);
            }
            for piece in pieces {
                push_fitting(text, piece, finer, budget, counter, units)?;
            }
            Ok(())
        }
        None => hard_split(text, range, budget, counter, units),
    }
}

/// A single "word" longer than the budget (a base64 blob, a table without spaces): the longest
/// prefixes that fit, found by bisection on character boundaries.
fn hard_split(
    text: &str,
    range: Range<usize>,
    budget: usize,
    counter: &dyn CountTokens,
    units: &mut Vec<(Range<usize>, usize)>,
) -> HearthResult<()> {
    let mut start = range.start;
    while start < range.end {
        let bounds: Vec<usize> =
            text[start..range.end].char_indices().map(|(i, _)| start + i).skip(1).chain([range.end]).collect();
        let (mut lo, mut hi) = (0usize, bounds.len() - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if counter.count_tokens(&text[start..bounds[mid]])? <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let end = bounds[lo];
        units.push((start..end, counter.count_tokens(&text[start..end])?));
        start = end;
    }
    Ok(())
}

/// Splits `range` into pieces at `level`'s boundaries, each piece keeping the separator that
/// follows it, so the pieces cover the range exactly.
fn split_keep(text: &str, range: Range<usize>, level: Level) -> Vec<Range<usize>> {
    let s = &text[range.clone()];
    let mut cuts = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().map_or(1, char::len_utf8);
        let boundary_end = match level {
            Level::Paragraph if s[i..].starts_with("\n\n") => {
                let mut e = i;
                while e < s.len() && bytes[e] == b'\n' {
                    e += 1;
                }
                Some(e)
            }
            // A sentence ends at . ! ? (or their full-width forms) followed by a space or line
            // end, or at a line end.
            Level::Sentence => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                let next = s[i + c..].chars().next();
                if ch == '\n' || (matches!(ch, '.' | '!' | '?') && next.is_none_or(char::is_whitespace)) {
                    let mut e = i + c;
                    while e < s.len() && s[e..].starts_with([' ', '\n']) {
                        e += 1;
                    }
                    Some(e)
                } else if matches!(ch, '。' | '！' | '？') {
                    Some(i + c)
                } else {
                    None
                }
            }
            Level::Word if bytes[i].is_ascii_whitespace() => {
                let mut e = i;
                while e < s.len() && bytes[e].is_ascii_whitespace() {
                    e += 1;
                }
                Some(e)
            }
            _ => None,
        };
        match boundary_end {
            Some(e) if e < s.len() => {
                cuts.push(range.start + e);
                i = e;
            }
            Some(e) => i = e,
            None => i += c,
        }
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = range.start;
    for cut in cuts {
        if cut > start {
            out.push(start..cut);
            start = cut;
        }
    }
    out.push(start..range.end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word: enough to test the cutting.
    struct Words;
    impl CountTokens for Words {
        fn count_tokens(&self, text: &str) -> HearthResult<usize> {
            Ok(text.split_whitespace().count())
        }
    }

    fn covered(text: &str, chunks: &[ByteChunk]) {
        assert_eq!(chunks.first().unwrap().range.start, 0);
        assert_eq!(chunks.last().unwrap().range.end, text.len());
        for w in chunks.windows(2) {
            assert!(w[1].range.start <= w[0].range.end && w[1].range.start > w[0].range.start, "{w:?}");
        }
    }

    #[test]
    fn paragraphs_then_sentences_then_words_then_characters() {
        let text = "a b c.\n\nd e f. g h i. j k l.\n\nmmmmmmmmmm n";
        let chunks = cut(text, 3, 0, &Words).unwrap();
        covered(text, &chunks);
        let pieces: Vec<&str> = chunks.iter().map(|c| &text[c.range.clone()]).collect();
        assert_eq!(pieces, ["a b c.\n\n", "d e f. ", "g h i. ", "j k l.\n\n", "mmmmmmmmmm n"]);
        assert!(chunks.iter().all(|c| c.tokens <= 3));
    }

    #[test]
    fn short_boundary_units_are_shared_by_neighbours() {
        let text = "one two.\n\nthree.\n\nfour five six.\n\nseven.";
        let chunks = cut(text, 4, 1, &Words).unwrap();
        covered(text, &chunks);
        let pieces: Vec<&str> = chunks.iter().map(|c| &text[c.range.clone()]).collect();
        assert_eq!(pieces, ["one two.\n\nthree.\n\n", "three.\n\nfour five six.\n\n", "seven."]);
    }
}
