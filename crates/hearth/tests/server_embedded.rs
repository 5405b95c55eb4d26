//! The server inside another program (as the desktop app will run it): `server::router` over a
//! runtime the program owns offers whatever model that runtime has loaded, and says so plainly
//! when it has none.

mod support;

use hearth::server::{self, ServerOptions};
use serde_json::{json, Value};
use support::runtime::{Fixture, MODEL_ID};

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

#[test]
fn the_served_model_is_the_one_the_runtime_has_loaded() {
    let f = Fixture::new(8);
    let app = server::router(f.runtime.clone(), &ServerOptions::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let base = f.tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        format!("http://{addr}")
    });
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
}
