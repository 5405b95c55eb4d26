//! Load figures for the conversation store: with N conversations of M messages (default 1,000 x
//! 200 = 200,000 messages, Korean and English), how long listing the first page and full-text
//! searches take.
//!
//!     cargo run -p hearth --example store_bench [-- --dir DIR --conversations N --messages M --runs R]
//!
//! An existing DIR with data is reused (building the data set takes minutes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth::store::*;

const KO: &[&str] = &[
    "오늘",
    "내일",
    "회의록",
    "서울의",
    "정기회의",
    "프로젝트",
    "일정을",
    "확인해",
    "주세요",
    "예산",
    "보고서를",
    "작성했습니다",
    "고객",
    "미팅",
    "점심",
    "메뉴",
    "추천해",
    "여행",
    "계획",
    "부산에서",
    "날씨가",
    "좋네요",
    "코드를",
    "검토해",
    "모델이",
    "답변을",
    "요약해",
    "문서를",
    "번역",
    "질문이",
    "있어요",
    "회의",
    "시간은",
    "다음",
    "주에",
    "발표",
    "자료를",
    "준비",
    "감사합니다",
    "정리해",
    "줘",
    "집에",
    "가서",
    "밥",
    "먹자",
];
const EN: &[&str] = &[
    "the",
    "meeting",
    "notes",
    "project",
    "budget",
    "report",
    "please",
    "schedule",
    "review",
    "lunch",
    "travel",
    "plan",
    "code",
    "rust",
    "model",
    "answer",
    "summary",
    "document",
    "translate",
    "question",
    "tomorrow",
    "today",
    "weather",
    "Seoul",
    "Busan",
    "deadline",
    "draft",
    "send",
    "email",
    "team",
    "and",
    "for",
    "with",
    "about",
    "kimchi",
    "recipe",
    "memory",
    "context",
    "window",
    "token",
    "search",
    "fast",
];

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sentence(rng: &mut Rng) -> String {
    let words = if rng.below(2) == 0 { KO } else { EN };
    let n = 8 + rng.below(32);
    (0..n).map(|_| words[rng.below(words.len())]).collect::<Vec<_>>().join(" ")
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let conversations: i64 = arg(&args, "--conversations").map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let per: i64 = arg(&args, "--messages").map(|s| s.parse()).transpose()?.unwrap_or(200);
    let runs: usize = arg(&args, "--runs").map(|s| s.parse()).transpose()?.unwrap_or(20);
    let dir = arg(&args, "--dir").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("hearth-store-bench"));

    let store = Store::open(&dir).await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(store.pool()).await?;
    if have < conversations * per {
        println!("building {conversations} conversations x {per} messages in {} …", dir.display());
        let t = Instant::now();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let base = 1_700_000_000_000i64;
        for c in 0..conversations {
            let cid = c + 1;
            let start = base + c * 3_600_000;
            let messages: Vec<Message> = (0..per)
                .map(|i| {
                    let at = start + i * 10_000;
                    let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
                    Message {
                        id: c * per + i + 1,
                        conversation_id: cid,
                        parent_id: (i > 0).then_some(c * per + i),
                        role,
                        content: sentence(&mut rng),
                        token_count: Some(40),
                        created_at: at,
                        updated_at: at,
                        state: MessageState::Complete,
                        error: None,
                        stats: GenerationStats::default(),
                        attachments: Vec::new(),
                    }
                })
                .collect();
            let title: String = sentence(&mut rng).split(' ').take(4).collect::<Vec<_>>().join(" ");
            let export = ConversationExport {
                format: EXPORT_FORMAT.into(),
                version: EXPORT_VERSION,
                conversation: Conversation {
                    id: cid,
                    title,
                    created_at: start,
                    updated_at: start + per * 10_000,
                    model: Some("gemma-3-1b-it-q4_0".into()),
                    system_prompt: None,
                    sampling: SamplingSettings::default(),
                    pinned: c % 100 == 0,
                    archived: false,
                    branched_from_conversation_id: None,
                    branched_from_message_id: None,
                    message_count: per,
                },
                messages,
                blobs: BTreeMap::new(),
            };
            store.import_json(&export).await?;
            if (c + 1) % 100 == 0 {
                println!("  {} conversations, {:.0} s", c + 1, t.elapsed().as_secs_f64());
            }
        }
        sqlx::query("PRAGMA optimize").execute(store.pool()).await?;
        println!("built in {:.1} s", t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(store.db_path())?.len();
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(store.pool()).await?;
    let convs: i64 = sqlx::query_scalar("SELECT count(*) FROM conversations").fetch_one(store.pool()).await?;
    println!("{convs} conversations, {have} messages, database {:.0} MB", size as f64 / 1e6);

    let mut list = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let page = store.list_conversations(&ListOptions { limit: 50, ..Default::default() }).await?;
        list.push(t.elapsed());
        assert_eq!(page.items.len(), 50);
    }
    println!(
        "list first page (50):            median {:>7.2} ms  max {:>7.2} ms",
        ms(median(list.clone())),
        ms(*list.iter().max().unwrap())
    );

    for q in
        ["회의", "서울", "회의록", "정기회의 예산", "집", "meet", "kimchi recipe", "the", "deadline draft", "없는단어"]
    {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let hits = store.search(q, &SearchOptions::default()).await?;
            times.push(t.elapsed());
            n = hits.len();
        }
        let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?")
            .bind(hearth::store::search::match_expression(q).unwrap_or_default())
            .fetch_one(store.pool())
            .await?;
        println!(
            "search {:<16} {:>6} matching msgs, {:>2} hits: median {:>7.2} ms  max {:>7.2} ms",
            format!("{q:?}"),
            matches,
            n,
            ms(median(times.clone())),
            ms(*times.iter().max().unwrap())
        );
    }
    store.close().await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
