//! Export to Markdown and JSON, and JSON import restoring the conversation exactly.

use hearth::store::*;

async fn sample(store: &Store) -> ConversationId {
    let c = store
        .create_conversation(&NewConversation {
            title: "회의 준비 / meeting prep".into(),
            model: Some("gemma-3-1b-it-q4_0".into()),
            system_prompt: Some("Answer in Korean.".into()),
            sampling: SamplingSettings { temperature: Some(0.2), top_k: Some(40), seed: Some(7), ..Default::default() },
        })
        .await
        .unwrap();
    store.set_pinned(c.id, true).await.unwrap();
    let u = store.append_message(c.id, &NewMessage::complete(Role::User, "이 문서를 요약해 줘")).await.unwrap();
    store
        .add_attachment(
            u.id,
            &NewAttachment {
                kind: AttachmentKind::Document,
                file_name: "minutes.txt".into(),
                mime: "text/plain".into(),
                bytes: "회의록: 예산 확정".as_bytes().to_vec(),
                extracted_text: Some("회의록: 예산 확정".into()),
            },
        )
        .await
        .unwrap();
    store
        .add_attachment(
            u.id,
            &NewAttachment {
                kind: AttachmentKind::Image,
                file_name: "chart.png".into(),
                mime: "image/png".into(),
                bytes: (0..=255u8).cycle().take(300_000).collect(),
                extracted_text: None,
            },
        )
        .await
        .unwrap();
    let a = store.append_message(c.id, &NewMessage::streaming(Role::Assistant)).await.unwrap();
    store
        .finish_message(
            a.id,
            &MessageFinish {
                content: "예산이 확정되었습니다.".into(),
                state: MessageState::Interrupted,
                token_count: Some(9),
                stats: GenerationStats {
                    model: Some("gemma".into()),
                    gen_tokens_per_s: Some(33.5),
                    prompt_tokens_per_s: None,
                    stop_reason: Some("cancelled".into()),
                },
                error: None,
            },
        )
        .await
        .unwrap();
    c.id
}

#[tokio::test]
async fn json_round_trip_restores_the_conversation_exactly() {
    let a = tempfile::tempdir().unwrap();
    let src = Store::open(a.path()).await.unwrap();
    let id = sample(&src).await;
    let export = src.export_json(id).await.unwrap();
    assert_eq!(export.blobs.len(), 2);
    let json = serde_json::to_string_pretty(&export).unwrap();

    let b = tempfile::tempdir().unwrap();
    let dst = Store::open(b.path()).await.unwrap();
    let parsed: ConversationExport = serde_json::from_str(&json).unwrap();
    let imported = dst.import_json(&parsed).await.unwrap();
    assert_eq!(imported.id, id);
    let again = dst.export_json(imported.id).await.unwrap();
    assert_eq!(again, export, "a fresh database gets back exactly what was exported");
    let msgs = dst.messages(imported.id).await.unwrap();
    assert_eq!(dst.attachment_bytes(&msgs[0].attachments[1]).await.unwrap().len(), 300_000);
    // Imported text is searchable.
    assert_eq!(dst.search("예산", &SearchOptions::default()).await.unwrap().len(), 1);

    // Importing into the database it came from: new ids, same content.
    let copy = src.import_json(&parsed).await.unwrap();
    assert_ne!(copy.id, id);
    let mut c2 = src.export_json(copy.id).await.unwrap();
    assert_eq!(c2.messages.len(), export.messages.len());
    for (m2, m1) in c2.messages.iter_mut().zip(&export.messages) {
        assert_eq!((m2.role, &m2.content, m2.state, &m2.stats), (m1.role, &m1.content, m1.state, &m1.stats));
        assert_eq!(m2.attachments.len(), m1.attachments.len());
    }
}

#[tokio::test]
async fn markdown_export_reads_well() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).await.unwrap();
    let id = sample(&s).await;
    let md = s.export_markdown(id).await.unwrap();
    assert!(md.starts_with("# 회의 준비 / meeting prep\n"), "{md}");
    assert!(md.contains("- Model: gemma-3-1b-it-q4_0"));
    assert!(md.contains("## User\n\n이 문서를 요약해 줘\n"));
    assert!(md.contains("## Assistant\n\n_(interrupted)_\n\n예산이 확정되었습니다."));
    assert!(md.contains("> Attachment: minutes.txt (text/plain, 24 bytes, sha256 "));
    assert!(matches!(s.export_markdown(999).await, Err(StoreError::ConversationNotFound(999))));
}

#[tokio::test]
async fn bad_imports_are_refused_without_writing() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).await.unwrap();
    let id = sample(&s).await;
    let good = s.export_json(id).await.unwrap();
    let before = s
        .list_conversations(&ListOptions { filter: ArchiveFilter::All, ..Default::default() })
        .await
        .unwrap()
        .items
        .len();

    let mut wrong_format = good.clone();
    wrong_format.format = "something-else".into();
    assert!(matches!(s.import_json(&wrong_format).await, Err(StoreError::Import(m)) if m.contains("not a Hearth")));
    let mut newer = good.clone();
    newer.version = EXPORT_VERSION + 1;
    assert!(matches!(s.import_json(&newer).await, Err(StoreError::Import(m)) if m.contains("newer")));
    let mut tampered = good.clone();
    let first = tampered.blobs.keys().next().unwrap().clone();
    tampered.blobs.insert(first, "aGVsbG8=".into());
    assert!(matches!(s.import_json(&tampered).await, Err(StoreError::Import(m)) if m.contains("sha256")));
    let mut missing = good.clone();
    missing.blobs.clear();
    assert!(matches!(s.import_json(&missing).await, Err(StoreError::Import(m)) if m.contains("no bytes")));

    let after = s
        .list_conversations(&ListOptions { filter: ArchiveFilter::All, ..Default::default() })
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(before, after);
}
