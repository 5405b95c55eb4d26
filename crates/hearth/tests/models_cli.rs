//! `hearth models …` through the same functions main.rs calls (the file is compiled here as a
//! module so the CLI is tested without depending on main.rs's wiring).

#[path = "../src/cli/models.rs"]
#[allow(dead_code)]
mod cli_models;
// `models remote …` lives in its own file, which models.rs names as `super::remote`.
#[path = "../src/cli/remote.rs"]
mod remote;
mod support;

use clap::Parser;
use cli_models::{ModelsArgs, ModelsCmd};
use hearth::models::registry;
use hearth::store::Store;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: ModelsArgs,
}

fn parse(argv: &[&str]) -> Result<ModelsArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("models").chain(argv.iter().copied())).map(|c| c.args)
}

#[test]
fn arguments_parse() {
    match parse(&["download", "gemma-3-4b-it", "--quant", "Q8_0", "--no-mmproj", "--json"]).unwrap().cmd {
        ModelsCmd::Download { id, quant, no_mmproj, json } => {
            assert_eq!((id.as_str(), quant.as_deref(), no_mmproj, json), ("gemma-3-4b-it", Some("Q8_0"), true, true));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["fit"]).unwrap().cmd {
        ModelsCmd::Fit { context, kv_type, model, json } => {
            assert_eq!((context, kv_type.as_str(), model, json), (8192, "f16", None, false));
        }
        other => panic!("{other:?}"),
    }
    assert!(parse(&["download"]).is_err(), "download needs an id");
    assert!(parse(&["fit", "--context", "lots"]).is_err());
    assert!(matches!(parse(&["import", "/x.gguf", "--copy"]).unwrap().cmd, ModelsCmd::Import { copy: true, .. }));
}

#[tokio::test]
async fn fit_prints_a_table_and_refuses_a_context_too_long() {
    let data = tempfile::tempdir().unwrap();
    // Prints this machine's table (visible with --nocapture).
    cli_models::run(parse(&["fit"]).unwrap(), data.path()).await.unwrap();
    let err = cli_models::run(parse(&["fit", "--model", "gemma-3-1b-it", "--context", "131072"]).unwrap(), data.path())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("beyond gemma-3-1b-it's maximum of 32768"), "{err}");
    let err = cli_models::run(parse(&["fit", "--kv-type", "f8"]).unwrap(), data.path()).await.unwrap_err();
    assert!(err.to_string().contains("unknown --kv-type 'f8'"), "{err}");
    // Only the engine's cache types: it has no q8_0 cache to fit.
    let err = cli_models::run(parse(&["fit", "--kv-type", "q8_0"]).unwrap(), data.path()).await.unwrap_err();
    assert!(err.to_string().contains("use f16 or f32"), "{err}");
    cli_models::run(parse(&["catalog"]).unwrap(), data.path()).await.unwrap();

    // A GGUF outside the catalog is measured from its header; its maximum context holds too.
    let model = std::env::var("HEARTH_TEST_MODEL")
        .unwrap_or_else(|_| "/root/.cache/hearth-test/gemma-3-270m-q4_k_m.gguf".into());
    assert!(
        std::path::Path::new(&model).is_file(),
        "the test model is missing at {model}: run scripts/fetch-test-model"
    );
    cli_models::run(parse(&["fit", "--model", &model, "--context", "32768"]).unwrap(), data.path()).await.unwrap();
    let err = cli_models::run(parse(&["fit", "--model", &model, "--context", "65536"]).unwrap(), data.path())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maximum of 32768"), "{err}");
    let err = cli_models::run(parse(&["fit", "--model", "no-such-model"]).unwrap(), data.path()).await.unwrap_err();
    assert!(err.to_string().contains("neither an existing file nor a registered model id"), "{err}");
}

#[tokio::test]
async fn import_list_remove_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let model = data.path().join("tiny.gguf");
    support::gguf_gen::write(&model, &support::gguf_gen::gemma3(100));
    let path = model.to_str().unwrap();
    cli_models::run(parse(&["import", path, "--id", "tiny", "--copy", "--json"]).unwrap(), data.path()).await.unwrap();
    {
        let store = Store::open(data.path()).await.unwrap();
        let m = registry::get(&store, "tiny").await.unwrap().expect("registered");
        assert!(m.path.starts_with(data.path().join("models")));
        store.close().await;
    }
    cli_models::run(parse(&["list"]).unwrap(), data.path()).await.unwrap();
    cli_models::run(parse(&["remove", "tiny"]).unwrap(), data.path()).await.unwrap();
    let store = Store::open(data.path()).await.unwrap();
    assert!(registry::list(&store).await.unwrap().is_empty());
    let err = cli_models::run(parse(&["remove", "tiny"]).unwrap(), data.path()).await.unwrap_err();
    assert!(err.to_string().contains("no registered model 'tiny'"), "{err}");
}

#[tokio::test]
async fn download_of_an_unknown_id_lists_the_catalog_without_touching_the_network() {
    let data = tempfile::tempdir().unwrap();
    let err = cli_models::run(parse(&["download", "gemma-5"]).unwrap(), data.path()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no catalog model 'gemma-5'") && msg.contains("gemma-3-270m-it"), "{msg}");
}
