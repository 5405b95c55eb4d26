//! `hearth models import` finds the vision projector beside a GGUF, `models list --json` says the
//! model reads images, and `hearth chat --message T --image F` stores the image with the turn and
//! shows it to the model: the same prompt and greedy reply as `hearth generate --image`.

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth::store::{AttachmentKind, Role, Store};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vision").join(name)
}

fn hearth(data: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).env("HEARTH_DATA_DIR", data).args(args).output().unwrap();
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn chat_with_an_image_on_an_imported_vision_pair_is_generate_with_the_image() {
    let data = tempfile::tempdir().unwrap();
    // The pair as a download leaves it: the model and an `mmproj*.gguf` in one folder.
    let folder = tempfile::tempdir().unwrap();
    let (model, mmproj) = (folder.path().join("tiny-gemma3-vision.gguf"), folder.path().join("mmproj-tiny-f16.gguf"));
    std::fs::copy(fixture("tiny-gemma3-vision.gguf"), &model).unwrap();
    std::fs::copy(fixture("tiny-gemma3-mmproj.gguf"), &mmproj).unwrap();

    let imported = hearth(data.path(), &["models", "import", model.to_str().unwrap(), "--id", "vis", "--json"]);
    let found = PathBuf::from(imported["mmproj_path"].as_str().expect("the projector beside the model is found"));
    assert_eq!(found, std::fs::canonicalize(&mmproj).unwrap());
    let list = hearth(data.path(), &["models", "list", "--json"]);
    let vis = list["models"].as_array().unwrap().iter().find(|m| m["model"]["id"] == "vis").unwrap();
    assert_eq!(vis["reads_images"], true, "{list}");

    let image = fixture("square.896.png");
    let question = "What is in this picture?";
    let greedy = ["--temperature", "0", "--max-tokens", "5"];
    let mut args = vec!["chat", "--model", "vis", "--system", "", "--json", "--message", question];
    args.extend(["--image", image.to_str().unwrap()]);
    args.extend(greedy);
    let chat = hearth(data.path(), &args);

    let mut args = vec!["generate", "--model", model.to_str().unwrap(), "--mmproj", mmproj.to_str().unwrap()];
    args.extend(["--prompt", question, "--image", image.to_str().unwrap(), "--json"]);
    args.extend(greedy);
    let generated = hearth(data.path(), &args);
    assert_eq!(generated["images"], 1);
    assert_eq!(chat["prompt_tokens"].as_u64(), generated["prompt_ids"].as_array().map(|a| a.len() as u64));
    assert_eq!(chat["reply"], generated["text"], "same greedy reply");
    assert_eq!(chat["generated_tokens"].as_u64(), generated["ids"].as_array().map(|a| a.len() as u64));

    let store = Store::open(data.path()).await.unwrap();
    let msgs = store.messages(chat["conversation_id"].as_i64().unwrap()).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.role).collect::<Vec<_>>(), [Role::User, Role::Assistant]);
    assert_eq!(msgs[0].content, question);
    let files: Vec<_> = msgs[0].attachments.iter().map(|a| (a.kind, a.file_name.as_str())).collect();
    assert_eq!(files, [(AttachmentKind::Image, "square.896.png")]);
}

#[test]
fn models_fit_json_of_an_imported_vision_pair_counts_the_projector_as_held_and_the_encoder_peak() {
    let data = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let (model, mmproj) = (folder.path().join("tiny-gemma3-vision.gguf"), folder.path().join("mmproj-tiny-f16.gguf"));
    std::fs::copy(fixture("tiny-gemma3-vision.gguf"), &model).unwrap();
    std::fs::copy(fixture("tiny-gemma3-mmproj.gguf"), &mmproj).unwrap();
    hearth(data.path(), &["models", "import", model.to_str().unwrap(), "--id", "vis", "--json"]);

    let fit = hearth(data.path(), &["models", "fit", "--model", "vis", "--context", "512", "--json"]);
    let e = &fit["rows"][0]["estimate"];
    let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("no {k} in {e}"));
    let held = engine::vision::VisionMemory::read(&mmproj).unwrap();
    assert_eq!(n("mmproj_bytes"), held.weight_bytes, "{e}");
    assert_eq!(n("encoder_peak_bytes"), held.activation_peak_bytes, "{e}");
    assert_eq!(n("mmproj_file_bytes"), std::fs::metadata(&mmproj).unwrap().len());
    assert_eq!(
        n("total_bytes"),
        n("weights_bytes") + n("kv_bytes") + n("overhead_bytes") + n("mmproj_bytes") + n("encoder_peak_bytes")
    );
}
