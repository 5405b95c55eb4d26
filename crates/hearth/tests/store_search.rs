//! Full-text search in Korean and English against a real database file.

use hearth::store::*;

async fn seeded() -> (tempfile::TempDir, Store, Vec<(ConversationId, MessageId, &'static str)>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let texts = [
        ("업무", "오늘 회의록 정리해 줘"),
        ("여행", "서울의 밤은 아름답다"),
        ("일정", "내일 정기회의 시간은?"),
        ("Work", "The meeting notes are attached."),
        ("Food", "집에 가서 밥 먹자"),
        ("Misc", "회 의 is not a word here, neither is 의회"),
    ];
    let mut ids = Vec::new();
    for (title, text) in texts {
        let c =
            store.create_conversation(&NewConversation { title: title.into(), ..Default::default() }).await.unwrap();
        let m = store.append_message(c.id, &NewMessage::complete(Role::User, text)).await.unwrap();
        ids.push((c.id, m.id, text));
    }
    (dir, store, ids)
}

fn brackets() -> SearchOptions {
    SearchOptions { highlight_open: "[".into(), highlight_close: "]".into(), ..Default::default() }
}

async fn message_hits(store: &Store, q: &str) -> Vec<SearchHit> {
    store.search(q, &brackets()).await.unwrap().into_iter().filter(|h| h.message_id.is_some()).collect()
}

#[tokio::test]
async fn two_syllable_korean_finds_words_with_particles_and_compounds() {
    let (_d, store, ids) = seeded().await;
    let hits = message_hits(&store, "회의").await;
    let found: Vec<_> = hits.iter().map(|h| h.message_id.unwrap()).collect();
    // 회의록 (minutes) and 정기회의 (regular meeting), but not "회 의" split by a space or 의회.
    assert_eq!(found.len(), 2, "{hits:?}");
    assert!(found.contains(&ids[0].1) && found.contains(&ids[2].1));
    let h = hits.iter().find(|h| h.message_id == Some(ids[0].1)).unwrap();
    assert_eq!(h.snippet, "오늘 [회의]록 정리해 줘");

    let seoul = message_hits(&store, "서울").await;
    assert_eq!(seoul.len(), 1);
    assert_eq!(seoul[0].snippet, "[서울]의 밤은 아름답다");
    assert_eq!(seoul[0].conversation_title, "여행");
}

#[tokio::test]
async fn longer_and_single_syllable_korean_queries() {
    let (_d, store, ids) = seeded().await;
    let hits = message_hits(&store, "회의록").await;
    assert_eq!(hits.iter().map(|h| h.message_id.unwrap()).collect::<Vec<_>>(), [ids[0].1]);
    let hits = message_hits(&store, "집").await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].snippet, "[집]에 가서 밥 먹자");
    // All words must match.
    assert_eq!(message_hits(&store, "서울 밤은").await.len(), 1);
    assert!(message_hits(&store, "서울 회의").await.is_empty());
    assert!(message_hits(&store, "부산").await.is_empty());
}

#[tokio::test]
async fn english_prefix_search_titles_and_ranking() {
    let (_d, store, ids) = seeded().await;
    let hits = message_hits(&store, "MEET").await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message_id, Some(ids[3].1));
    assert_eq!(hits[0].snippet, "The [meeting] notes are attached.");
    assert_eq!(hits[0].role, Some(Role::User));

    let all = store.search("work", &brackets()).await.unwrap();
    assert_eq!(all[0].message_id, None, "title hits come first");
    assert_eq!(all[0].conversation_id, ids[3].0);
    assert_eq!(all[0].snippet, "[Work]");

    // bm25: the message that says it more often ranks first.
    let c = store.create_conversation(&NewConversation::default()).await.unwrap();
    let once = store
        .append_message(c.id, &NewMessage::complete(Role::User, "kimchi and rice and more words here"))
        .await
        .unwrap();
    let many = store.append_message(c.id, &NewMessage::complete(Role::User, "kimchi kimchi kimchi")).await.unwrap();
    let ranked = message_hits(&store, "kimchi").await;
    assert_eq!(ranked.iter().map(|h| h.message_id.unwrap()).collect::<Vec<_>>(), [many.id, once.id]);
}

#[tokio::test]
async fn search_follows_edits_and_rejects_empty_queries() {
    let (_d, store, ids) = seeded().await;
    store.update_message_text(ids[1].1, "부산의 바다").await.unwrap();
    assert!(message_hits(&store, "서울").await.is_empty());
    assert_eq!(message_hits(&store, "부산").await.len(), 1);
    store.rename_conversation(ids[1].0, "바다 여행").await.unwrap();
    let t = store.search("바다", &brackets()).await.unwrap();
    assert_eq!(t[0].message_id, None);
    assert_eq!(t[0].snippet, "[바다] 여행");
    // FTS syntax in user input is treated as text, never as operators.
    assert!(store.search("\"NEAR( OR *", &brackets()).await.is_ok());
    assert!(matches!(store.search(" ?! ", &brackets()).await, Err(StoreError::EmptyQuery(_))));
}

#[tokio::test]
async fn ranking_is_bounded_to_the_newest_matches() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).await.unwrap();
    let c = store.create_conversation(&NewConversation::default()).await.unwrap();
    let best_but_old = store.append_message(c.id, &NewMessage::complete(Role::User, "예산 예산 예산")).await.unwrap();
    let a = store
        .append_message(c.id, &NewMessage::complete(Role::User, "예산 and many other words in this one"))
        .await
        .unwrap();
    let b = store.append_message(c.id, &NewMessage::complete(Role::User, "예산 again with a few words")).await.unwrap();
    let ids = |hits: Vec<SearchHit>| hits.into_iter().filter_map(|h| h.message_id).collect::<Vec<_>>();
    let all = ids(store.search("예산", &SearchOptions::default()).await.unwrap());
    assert_eq!(all[0], best_but_old.id, "bm25 puts the densest match first");
    let windowed =
        ids(store.search("예산", &SearchOptions { rank_window: 2, limit: 2, ..Default::default() }).await.unwrap());
    assert_eq!(windowed, [b.id, a.id], "only the two newest matches are ranked");
}
