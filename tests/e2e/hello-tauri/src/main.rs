//! A hello-world Tauri 2 window: the baseline Hearth's idle footprint is compared with.
fn main() {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .expect("the hello-world window failed to start");
}
