//! The server inside another program (as the desktop app will run it): `server::router` over a
//! runtime the program owns offers whatever model that runtime has loaded, and says so plainly
//! when it has none. Requests are stored as conversations only when asked (`--store`).

mod support;

use hearth::server::{self, ServerOptions};
use serde_json::{json, Value};
use support::runtime::{Fixture, MODEL_ID};

/// A server over `f`'s runtime; stop it by sending on (or dropping) the sender.
fn start(f: &Fixture, options: &ServerOptions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = server::router(f.runtime.clone(), options).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let base = f.tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        format!("http://{addr}")
    });
    (base, stop)
}

fn conversations(f: &Fixture) -> Vec<hearth::store::Conversation> {
    f.tokio.block_on(f.store.list_conversations(&Default::default())).unwrap().items
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

#[test]
fn an_embedded_server_offers_the_loaded_model_and_stores_requests_only_when_asked() {
    let f = Fixture::new(8);
    let (base, stop) = start(&f, &ServerOptions::default());
    let client = reqwest::Client::new();
    let chat = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).to_string();

    // No model yet.
    f.tokio.block_on(async {
        let (status, v) = get(&client, format!("{base}/health")).await;
        assert_eq!((status, v["model"].as_str()), (503, Some("none")), "{v}");
        let (_, v) = get(&client, format!("{base}/v1/models")).await;
        assert_eq!(v["data"], json!([]), "{v}");
        let r = client.post(format!("{base}/v1/chat/completions")).body(chat.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "no_model", "{v}");
    });

    // The program loads a model: the server offers it, by its id.
    f.load().unwrap();
    f.tokio.block_on(async {
        let (status, v) = get(&client, format!("{base}/health")).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("ok")), "{v}");
        let (_, v) = get(&client, format!("{base}/v1/models")).await;
        assert_eq!(v["data"][0]["id"], MODEL_ID, "{v}");
        let (status, _) = get(&client, format!("{base}/v1/models/{MODEL_ID}")).await;
        assert_eq!(status, 200);
        let r = client.post(format!("{base}/v1/chat/completions")).body(chat).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!((v["model"].as_str(), v["usage"]["completion_tokens"].as_u64()), (Some(MODEL_ID), Some(2)), "{v}");
    });
    let _ = stop.send(());
    assert!(conversations(&f).is_empty(), "API requests are not stored unless asked");

    // With `store`, an answered request becomes a conversation.
    let (base, _stop) = start(&f, &ServerOptions { store: true, ..ServerOptions::default() });
    let chat = json!({"max_tokens": 2, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]});
    let reply = f.tokio.block_on(async {
        let r = client.post(format!("{base}/v1/chat/completions")).body(chat.to_string()).send().await.unwrap();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        v["choices"][0]["message"]["content"].as_str().unwrap().to_string()
    });
    let stored = conversations(&f);
    assert_eq!(stored.len(), 1);
    let c = &stored[0];
    assert_eq!(
        (c.title.as_str(), c.system_prompt.as_deref(), c.model.as_deref()),
        ("Hi there", Some("Be brief."), Some(MODEL_ID))
    );
    let messages = f.tokio.block_on(f.store.messages(c.id)).unwrap();
    let got: Vec<(String, String)> =
        messages.iter().map(|m| (m.role.as_str().to_string(), m.content.clone())).collect();
    assert_eq!(got, [("user".to_string(), "Hi there".to_string()), ("assistant".to_string(), reply)]);
    assert_eq!(messages[1].token_count, Some(2));
}
