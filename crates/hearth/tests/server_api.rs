//! `hearth serve` with real clients (curl, reqwest, the `openai` Python package) on the real
//! 270M model: whole and streamed replies, usage, stop sequences, OpenAI-shaped errors, the
//! fair queue under 32 concurrent requests, a full line, and a client that leaves mid-stream.
//!
//! Each test starts the built binary on a free port (`--port 0`; the port is read from the JSON
//! line it prints) over a fresh data folder, greedy sampling.

mod support;

use support::serve::{hearth, Server};

use std::process::Command;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde_json::{json, Value};

const KEY: &str = "test-key-9f2c";

/// `curl` with `args`, returning (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-sS", "-N", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

fn post(s: &Server, key: Option<&str>, body: &str) -> (u16, String) {
    let url = format!("{}/chat/completions", s.url);
    let auth = key.map(|k| format!("Authorization: Bearer {k}"));
    let mut args = vec!["-H", "Content-Type: application/json", "--data-binary", body, url.as_str()];
    if let Some(a) = &auth {
        args.extend(["-H", a.as_str()]);
    }
    curl(&args)
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.strip_prefix("data: ")).map(String::from).collect()
}

fn ask(model: &str, prompt: &str, extra: Value) -> String {
    let mut v = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

/// An OpenAI-shaped error with this status and code.
fn assert_error(got: (u16, String), status: u16, code: &str) {
    let v: Value = serde_json::from_str(&got.1).unwrap_or_else(|_| panic!("not JSON: {:?}", got.1));
    assert_eq!((got.0, v["error"]["code"].as_str()), (status, Some(code)), "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
}

#[test]
fn replies_whole_and_streamed_with_usage_and_stop_through_curl() {
    let s = Server::start(&["--cors", "http://localhost:3000"]);
    let (status, body) = curl(&[&format!("{}/models", s.url)]);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, v["data"][0]["id"].as_str()), (200, Some(s.model.as_str())), "{v}");

    let prompt = "Write three sentences about the sea.";
    let (status, body) = post(&s, None, &ask(&s.model, prompt, json!({"max_tokens": 24})));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    let whole = v["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let u = &v["usage"];
    assert_eq!(u["completion_tokens"], 24, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    assert!(u["prompt_tokens"].as_u64().unwrap() > 5, "{v}");
    assert_eq!(u["total_tokens"].as_u64(), Some(u["prompt_tokens"].as_u64().unwrap() + 24));
    assert!(whole.split_whitespace().count() >= 3, "{whole:?}");

    // Streamed, the same greedy reply arrives in pieces: role first, finish_reason and usage
    // on the last chunk, then [DONE].
    let (status, body) = post(&s, None, &ask(&s.model, prompt, json!({"max_tokens": 24, "stream": true})));
    assert_eq!(status, 200, "{body}");
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"), "{body}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert_eq!(text, whole);
    assert!(chunks.len() > 3, "one chunk per piece, not one block: {body}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["usage"]["completion_tokens"], 24);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["choices"][0]["finish_reason"].is_null()));

    // A stop sequence taken from the middle of that reply ends it just before.
    let word = whole.split_whitespace().nth(3).unwrap().to_string();
    let at = whole.find(&word).unwrap();
    let (status, body) = post(&s, None, &ask(&s.model, prompt, json!({"max_tokens": 24, "stop": [word]})));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"].as_str(), Some(&whole[..at]), "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() < 24, "{v}");
    // The one origin given with --cors may call from a browser (the preflight needs no key);
    // others get no CORS headers.
    let preflight = |origin: &str| {
        let (_, headers) = curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Access-Control-Request-Method: POST",
            &format!("{}/chat/completions", s.url),
        ]);
        headers.to_ascii_lowercase()
    };
    assert!(preflight("http://localhost:3000").contains("access-control-allow-origin: http://localhost:3000"));
    assert!(!preflight("http://evil.example").contains("access-control-allow-origin"));
    // Content as an array of text parts reads the same as a string.
    let parts = json!({"model": s.model, "max_tokens": 24,
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]});
    let (_, body) = post(&s, None, &parts.to_string());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"].as_str(), Some(whole.as_str()), "{v}");
}

#[test]
fn bad_requests_get_the_right_status_and_an_openai_shaped_error() {
    let s = Server::start(&["--api-key", KEY, "--max-body-bytes", "65536"]);
    let ok = ask(&s.model, "Hi", json!({"max_tokens": 2}));
    assert_error(post(&s, None, &ok), 401, "invalid_api_key");
    assert_error(post(&s, Some("wrong-key"), &ok), 401, "invalid_api_key");
    assert_error(curl(&[&format!("{}/models", s.url)]), 401, "invalid_api_key");
    assert_error(post(&s, Some(KEY), "{\"messages\": [{\"role\": \"user\", "), 400, "invalid_json");
    assert_error(post(&s, Some(KEY), "{\"messages\": \"hello\"}"), 400, "invalid_request");
    assert_error(post(&s, Some(KEY), &ask("no-such-model", "Hi", json!({}))), 404, "not_found");
    // The 270M model has no vision tower: an image is refused, naming the models that read one.
    let image = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
    let refused = post(&s, Some(KEY), &image.to_string());
    assert!(refused.1.contains("Gemma 3 4B"), "{}", refused.1);
    assert_error(refused, 400, "image_input_unsupported");
    let fetch = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    assert_error(post(&s, Some(KEY), &fetch.to_string()), 400, "invalid_request");
    // Longer than the 1024-token context: the runtime's code, as a client error.
    let long = ask(&s.model, &"word ".repeat(1500), json!({}));
    assert_error(post(&s, Some(KEY), &long), 400, "context_full");
    let huge = ask(&s.model, &"word ".repeat(20_000), json!({}));
    assert_error(post(&s, Some(KEY), &huge), 413, "request_too_large");
    let auth = format!("Authorization: Bearer {KEY}");
    assert_error(curl(&["-H", &auth, &format!("{}/embeddings", s.url)]), 404, "unknown_path");
    assert_error(curl(&["-H", &auth, &format!("{}/models/other", s.url)]), 404, "not_found");
    // Health needs no key; the right key works.
    let base = s.url.trim_end_matches("/v1");
    let (status, body) = curl(&[&format!("{base}/health")]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&s, Some(KEY), &ok);
    assert_eq!(status, 200, "{body}");
    // No CORS headers unless asked for.
    let (_, headers) =
        curl(&["-D", "-", "-o", "/dev/null", "-H", "Origin: http://evil.example", &format!("{base}/health")]);
    assert!(!headers.to_ascii_lowercase().contains("access-control-allow-origin"), "{headers}");
}

#[test]
fn serve_refuses_to_start_open_without_a_key_or_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], says: &str| {
        let out = hearth(dir.path()).arg("serve").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
    };
    refused(&["--host", "0.0.0.0", "--port", "0", "--model", "x"], "API key");
    refused(&["--port", "0", "--model", "x", "--cors", "localhost:3000"], "not a valid CORS origin");
    refused(&["--port", "0", "--model", "no-such-model"], "no-such-model");
    // No --model and no model the app used last.
    refused(&["--port", "0"], "no model given");
}

/// One streamed request seen from the client: when its first piece of text and its `[DONE]`
/// arrived, in a sequence shared by all requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Text(usize),
    Done(usize),
}

async fn stream_request(client: &reqwest::Client, s: &Server, body: String) -> reqwest::Response {
    client
        .post(format!("{}/chat/completions", s.url))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Reads SSE events from `resp`, calling `on` with each `data:` payload until it returns false.
async fn read_events(resp: reqwest::Response, mut on: impl FnMut(&str) -> bool) {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(bytes) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&bytes.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for data in event.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if !on(data) {
                    return;
                }
            }
        }
    }
}

#[test]
fn thirty_two_concurrent_requests_are_all_answered_in_order_of_arrival() {
    let s = Server::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..32 {
            let body = ask(&s.model, &format!("Say the number {i}."), json!({"max_tokens": 3, "stream": true}));
            // The response's headers come back once the request holds its place in line, so
            // the requests arrive in this order.
            let resp = stream_request(&client, &s, body).await;
            assert_eq!(resp.status(), 200);
            let seen = seen.clone();
            tasks.push(tokio::spawn(async move {
                let (mut text, mut finish, mut usage) = (false, None, None);
                read_events(resp, |data| {
                    if data == "[DONE]" {
                        seen.lock().unwrap().push(Seen::Done(i));
                        return false;
                    }
                    let c: Value = serde_json::from_str(data).unwrap();
                    if !text && c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty()) {
                        text = true;
                        seen.lock().unwrap().push(Seen::Text(i));
                    }
                    if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                        finish = Some(f.to_string());
                        usage = Some(c["usage"].clone());
                    }
                    true
                })
                .await;
                (finish, usage)
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let (finish, usage) = t.await.unwrap();
            assert!(finish.is_some(), "request {i} got no finish_reason");
            assert!(usage.unwrap()["completion_tokens"].as_u64().unwrap() >= 1, "request {i}");
        }
        let seen = seen.lock().unwrap().clone();
        // Each reply began after the one before it ended, in arrival order; none lost.
        let dones: Vec<usize> =
            seen.iter().filter_map(|e| if let Seen::Done(i) = e { Some(*i) } else { None }).collect();
        assert_eq!(dones, (0..32).collect::<Vec<_>>(), "{seen:?}");
        for (pos, e) in seen.iter().enumerate() {
            if let Seen::Text(i) = e {
                if *i > 0 {
                    let prev_done = seen.iter().position(|x| *x == Seen::Done(i - 1)).unwrap();
                    assert!(prev_done < pos, "request {i} streamed before {} ended: {seen:?}", i - 1);
                }
            }
        }
    });
}

#[test]
fn a_full_line_is_refused_and_a_client_that_leaves_frees_the_model() {
    let s = Server::start(&["--queue", "1"]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let long =
            ask(&s.model, "Count from 1 to 300, one number per line.", json!({"max_tokens": 400, "stream": true}));
        let leaving = stream_request(&client, &s, long).await;
        assert_eq!(leaving.status(), 200);
        // Wait until it generates: then it holds the model.
        let mut stream = leaving.bytes_stream();
        let mut got = String::new();
        while !got.contains("\"content\":\"") || got.matches("data: ").count() < 3 {
            got.push_str(&String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()));
        }
        let next_body = ask(&s.model, "Say hello.", json!({"max_tokens": 4, "stream": true}));
        let waiting = stream_request(&client, &s, next_body.clone()).await;
        assert_eq!(waiting.status(), 200);
        // One waits behind the running one already: the line (capacity 1) is full.
        let refused = stream_request(&client, &s, next_body).await;
        assert_eq!(refused.status(), 429);
        let v: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "busy", "{v}");
        // The client leaves mid-reply; the waiting request then runs to its end.
        drop(stream);
        let mut finish = None;
        read_events(waiting, |d| {
            if d == "[DONE]" {
                return false;
            }
            let c: Value = serde_json::from_str(d).unwrap();
            if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
            true
        })
        .await;
        assert!(finish.is_some(), "the waiting request never finished");

        // A client waiting for a whole (not streamed) reply that leaves cancels it too.
        let body = ask(&s.model, "Count from 1 to 300, one number per line.", json!({"max_tokens": 400}));
        let (c, url) = (client.clone(), format!("{}/chat/completions", s.url));
        let whole = tokio::spawn(async move { c.post(url).body(body).send().await });
        while !s.log().iter().any(|l| l.contains("-3 started")) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        whole.abort();
        while !s.log().iter().any(|l| l.contains("-3 ended")) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let log = s.log();
    assert!(log.iter().any(|l| l.contains("-3 ended: cancelled")), "{log:#?}");
    // The server's log: the first generation was cancelled (not run to its 400 tokens) before
    // the second began.
    let log = s.log();
    let ended = log.iter().position(|l| l.contains("chatcmpl-hearth-") && l.contains("-1 ended: cancelled"));
    let second = log.iter().position(|l| l.contains("-2 started"));
    assert!(ended.is_some() && second.is_some() && ended < second, "{log:#?}");
    let n: usize = log[ended.unwrap()].rsplit("after ").next().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(n < 400, "{}", log[ended.unwrap()]);
}

/// The `openai` Python package against the server (tests/server/openai_client.py).
#[test]
fn the_openai_python_package_talks_to_hearth_serve() {
    let has_openai = Command::new("python3").args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success());
    if !has_openai {
        // CI installs it (scripts/python-test-deps); elsewhere say how.
        assert!(std::env::var_os("CI").is_none(), "the openai Python package is missing: run scripts/python-test-deps");
        eprintln!("skipped: no openai Python package (run scripts/python-test-deps)");
        return;
    }
    let s = Server::start(&["--api-key", KEY]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/server/openai_client.py");
    let out = Command::new("python3")
        .arg(script)
        .env("HEARTH_BASE_URL", &s.url)
        .env("HEARTH_API_KEY", KEY)
        .env("HEARTH_MODEL", &s.model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn vision_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision").join(name)
}

fn data_url(path: &std::path::Path) -> String {
    use base64::Engine as _;
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap()))
}

/// The tiny vision pair in a fresh folder, laid out as llama.cpp's downloads are: the projector
/// beside the model as mmproj*.gguf. (folder, model, projector)
fn tiny_vision_pair() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (model, mmproj) = (dir.path().join("tiny-gemma3.gguf"), dir.path().join("mmproj-tiny-gemma3.gguf"));
    std::fs::copy(vision_fixture("tiny-gemma3-vision.gguf"), &model).unwrap();
    std::fs::copy(vision_fixture("tiny-gemma3-mmproj.gguf"), &mmproj).unwrap();
    (dir, model, mmproj)
}

/// The engine's own greedy answer (8 tokens) for `prompt` about `image`: `hearth generate --json`.
fn generate_about(
    dir: &std::path::Path,
    model: &std::path::Path,
    mmproj: &std::path::Path,
    image: &std::path::Path,
    prompt: &str,
    extra: &[&str],
) -> Value {
    let out = hearth(dir)
        .args(["generate", "--model"])
        .arg(model)
        .arg("--mmproj")
        .arg(mmproj)
        .arg("--image")
        .arg(image)
        .args(extra)
        .args(["--prompt", prompt, "--temperature", "0", "--max-tokens", "8", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn image_url_parts_reach_the_vision_model_whole_and_streamed() {
    let (dir, model, mmproj) = tiny_vision_pair();
    let s = Server::start_model(&model, &["--store"]);
    let prompt = "Describe this image.";
    let image = vision_fixture("square.896.png");
    let want = generate_about(dir.path(), &model, &mmproj, &image, prompt, &[]);
    let prompt_len = want["prompt_ids"].as_array().unwrap().len() as u64;
    assert!(prompt_len > 256, "an image is 256 soft tokens: {prompt_len}");

    let body = |stream: bool| {
        json!({"model": s.model, "max_tokens": 8, "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": data_url(&image)}}]}]})
        .to_string()
    };
    let (status, text) = post(&s, None, &body(false));
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(prompt_len), "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], want["text"], "{v}");

    // Streamed, the same reply; the image's encoding comes from the cache, not the encoder.
    let (status, text) = post(&s, None, &body(true));
    assert_eq!(status, 200, "{text}");
    let events: Vec<Value> =
        sse_data(&text).iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    let streamed: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, want["text"].as_str().unwrap());
    let usage = events.iter().find_map(|e| e["usage"]["prompt_tokens"].as_u64());
    assert_eq!(usage, Some(prompt_len));
    let encodes = s.log().iter().filter(|l| l.contains("encoding image")).count();
    assert_eq!(encodes, 1, "{:?}", s.log());

    // Bytes that are not an image: the client's mistake, named.
    let junk = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,bm90IGFuIGltYWdl"}}]}]});
    let (status, text) = post(&s, None, &junk.to_string());
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_message")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("image 1 of messages[0]"), "{v}");

    // `--store` keeps the image with the stored request, as the app's history shows it.
    let out = hearth(s.data_dir()).args(["history", "list", "--json"]).output().unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "the two answered requests: {list}");
    let id = items[0]["id"].to_string();
    let out = hearth(s.data_dir()).args(["history", "export", &id, "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(export.contains("image-1.png") && export.contains("image/png"), "{export}");
}

#[test]
fn with_the_pan_scan_setting_an_image_url_is_read_with_its_crops() {
    let (dir, model, mmproj) = tiny_vision_pair();
    let s = Server::start_model(&model, &[]);
    // The app's setting, changed while the server runs: each request reads it.
    let set = hearth(s.data_dir()).args(["settings", "set", "panScan=true"]).output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let prompt = "Describe this image.";
    let image = vision_fixture("wide.png");

    let want = generate_about(dir.path(), &model, &mmproj, &image, prompt, &["--pan-scan"]);
    assert_eq!(want["crops"], json!([2]));
    let prompt_len = want["prompt_ids"].as_array().unwrap().len() as u64;
    assert!(prompt_len > 3 * 256, "the whole image and two crops of 256 soft tokens: {prompt_len}");

    let body = json!({"model": s.model, "max_tokens": 8,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": data_url(&image)}}]}]})
    .to_string();
    let (status, text) = post(&s, None, &body);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(prompt_len), "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], want["text"], "{v}");
    let encodes = s.log().iter().filter(|l| l.contains("encoding image")).count();
    assert_eq!(encodes, 3, "{:?}", s.log());
}
