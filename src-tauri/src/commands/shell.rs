//! Links from replies: checked again here (the UI is not trusted to have checked), confirmed
//! by the user, then opened in the system browser. The webview itself never navigates.

use tauri::AppHandle;
use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};
use tauri_plugin_opener::OpenerExt;

use crate::error::{AppError, AppResult, ErrorCode};

/// Only web and mail links open; `file:`, `javascript:`, custom schemes and the like never do.
pub fn check_external_url(url: &str) -> AppResult<&str> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let allowed = ["http://", "https://", "mailto:"].iter().any(|p| lower.starts_with(p) && lower.len() > p.len());
    if !allowed || url.chars().any(char::is_control) {
        return Err(AppError::new(ErrorCode::InvalidUrl, "only http, https and mailto links can be opened"));
    }
    Ok(url)
}

#[tauri::command]
pub async fn open_external(app: AppHandle, url: String) -> AppResult<()> {
    let url = check_external_url(&url)?.to_string();
    let shown = url.clone();
    let dialog_app = app.clone();
    // The confirmation blocks until answered: keep it off the async workers.
    let confirmed = tokio::task::spawn_blocking(move || {
        dialog_app
            .dialog()
            .message(format!("Open this link in your browser?\n\n{shown}"))
            .title("Open link")
            .kind(MessageDialogKind::Info)
            .buttons(MessageDialogButtons::OkCancelCustom("Open".into(), "Cancel".into()))
            .blocking_show()
    })
    .await
    .map_err(AppError::internal)?;
    if !confirmed {
        return Ok(());
    }
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| AppError::new(ErrorCode::Io, format!("cannot open the link: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_and_mail_links_pass() {
        assert_eq!(check_external_url(" https://example.com/a?b ").unwrap(), "https://example.com/a?b");
        assert!(check_external_url("HTTP://x.org").is_ok());
        assert!(check_external_url("mailto:a@b.c").is_ok());
        for bad in ["javascript:alert(1)", "file:///etc/passwd", "https://", "ftp://x", "tauri://x", "", "https://a\nb"]
        {
            assert_eq!(check_external_url(bad).unwrap_err().code, ErrorCode::InvalidUrl, "{bad:?}");
        }
    }
}
