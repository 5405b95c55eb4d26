//! Loading a model into the runtime's slot, with progress, behind the panic boundary.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use engine::device::DevicePreference;
use engine::session::{Engine, LoadOptions, Session};

use super::{lock, RemoteClient, Runtime, Slot};
use crate::app_api::{AppSettings, DeviceChoice};
use crate::error::{HearthError, HearthResult};
use crate::models::fit::{self, KvDType, Memory};
use crate::models::last_used::{self, LastUsed};
use crate::models::registry::InstalledModel;
use crate::turn_inputs::Vision;

/// What a caller hears while a model loads: fractions in 0..=1, at most about one per percent,
/// never decreasing, and exactly `1.0` once it is ready.
pub type LoadProgress = dyn Fn(f64) + Send + Sync;

/// The text of a caught panic, for the `internal` error that replaces it.
pub(super) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Refuses, before anything large is read, a load whose estimate (weights, KV cache, and for a
/// vision model its projector as held and the image encoder's peak: what `hearth models fit`
/// counts) is more than the memory free now. A model whose headers cannot be planned is left
/// to the loaders, which say what is wrong with its files.
fn check_memory(
    assumed: Option<Memory>,
    id: &str,
    path: &std::path::Path,
    mmproj: Option<&std::path::Path>,
    ctx: usize,
    cpu_only: bool,
) -> HearthResult<()> {
    let estimate = match fit::estimate_installed(id, path, mmproj, ctx as u64, KvDType::default()) {
        Ok(e) => e,
        Err(e) => {
            log::debug!("no memory estimate for {id}: {e}");
            return Ok(());
        }
    };
    let memory = assumed.unwrap_or_else(Memory::detect);
    if let Some(available) = memory.load_budget(cpu_only) {
        fit::check_fits(&estimate, available)?;
    }
    Ok(())
}

impl Runtime {
    /// Loads the installed model `model_id` (dropping the one loaded before), reporting
    /// progress, and remembers it for the next start. Refused with `busy` while a reply
    /// streams or another model loads.
    pub async fn load(
        &self,
        model_id: &str,
        on_progress: impl Fn(f64) + Send + Sync + 'static,
    ) -> HearthResult<super::ModelStatus> {
        let store = &self.inner.store;
        if crate::models::registry::get(store, model_id).await?.is_none() {
            if let Some(remote) = crate::remote::registry::get(store, &self.inner.data_dir, model_id).await? {
                return self.connect_remote(remote).await;
            }
        }
        let model = self.installed(model_id).await?;
        self.begin_load(&model)?;
        self.finish_load(model, on_progress).await
    }

    /// Marks `model` as loading (what [`Runtime::status`] reports from now on) and drops the
    /// old model: one model in memory at a time. Refused while a reply streams (loading
    /// replaces the session it uses) or another model loads (two loads would hold two models).
    pub fn begin_load(&self, model: &InstalledModel) -> HearthResult<()> {
        self.begin(&model.id, &model.display_name)
    }

    fn begin(&self, id: &str, name: &str) -> HearthResult<()> {
        let running = lock(&self.inner.running);
        let mut slot = lock(&self.inner.slot);
        if running.is_some() || matches!(*slot, Slot::Loading { .. }) {
            return Err(HearthError::busy());
        }
        *slot = Slot::Loading { id: id.to_string(), name: name.to_string(), fraction: 0.0 };
        Ok(())
    }

    /// Makes a remote model the current one: the local model (if any) is dropped, and the
    /// server must answer with the model to use (asked for once, here). A server that does not
    /// answer leaves the slot in `error` with the reason, like a failed load. Not remembered
    /// for the next start: reconnecting to another machine is the user's call.
    async fn connect_remote(&self, mut remote: crate::remote::RemoteModel) -> HearthResult<super::ModelStatus> {
        self.begin(&remote.name, &remote.name)?;
        let connected = async {
            let key = crate::remote::registry::key(&self.inner.data_dir, &remote.name)?;
            let probe = RemoteClient::new(remote.clone(), key.clone())?;
            // The id served is checked even when configured: a typo shows now, not mid-chat.
            let served = probe.models().await?;
            let model = match &remote.model {
                Some(m) if served.contains(m) => m.clone(),
                Some(m) => {
                    return Err(crate::remote::RemoteError::Refused {
                        url: remote.url.clone(),
                        status: 404,
                        message: format!("it serves no model {m:?} (it serves: {})", served.join(", ")),
                    })
                }
                None => served.into_iter().next().ok_or_else(|| crate::remote::RemoteError::Protocol {
                    url: remote.url.clone(),
                    reason: "it serves no model".into(),
                })?,
            };
            remote.model = Some(model);
            RemoteClient::new(remote.clone(), key)
        }
        .await;
        let id = remote.name.clone();
        *lock(&self.inner.slot) = match connected {
            Ok(client) => {
                let name = match &client.remote().model {
                    Some(m) if *m != id => format!("{id} ({m})"),
                    _ => id.clone(),
                };
                Slot::Remote { id, name, client: Arc::new(client) }
            }
            Err(e) => Slot::Failed { name: id.clone(), id, error: e.into() },
        };
        let status = self.status();
        match status.error.clone() {
            None => Ok(status),
            Some(e) => {
                log::warn!("connecting to {} failed: {} ({})", remote.name, e.message, e.code);
                Err(e)
            }
        }
    }

    /// Reads the model that [`Runtime::begin_load`] marked, off the async workers, and puts it
    /// in the slot (`ready`, or `error` with the reason). A panic while reading is caught: the
    /// slot says `error` (`internal`) and the next load works.
    pub async fn finish_load(
        &self,
        model: InstalledModel,
        on_progress: impl Fn(f64) + Send + Sync + 'static,
    ) -> HearthResult<super::ModelStatus> {
        self.finish_load_with_context(model, None, on_progress).await
    }

    /// [`Runtime::finish_load`] with a context length other than the app's setting (`None`:
    /// the setting), for work that plans its own context (document summaries).
    pub async fn finish_load_with_context(
        &self,
        model: InstalledModel,
        context: Option<usize>,
        on_progress: impl Fn(f64) + Send + Sync + 'static,
    ) -> HearthResult<super::ModelStatus> {
        let on_progress: Arc<LoadProgress> = Arc::new(on_progress);
        let loaded = match AppSettings::load(&self.inner.store).await {
            Ok(mut settings) => {
                if let Some(c) = context {
                    settings.context_size = c as _;
                }
                self.read_model(&model, &settings, on_progress.clone()).await
            }
            Err(e) => Err(e.into()),
        };
        {
            let mut slot = lock(&self.inner.slot);
            *slot = match loaded {
                Ok((session, vision)) => Slot::Ready {
                    id: model.id.clone(),
                    name: model.display_name.clone(),
                    engine: session.engine().clone(),
                    session: Arc::new(Mutex::new(session)),
                    vision: vision.map(Arc::new),
                },
                Err(ref e) => Slot::Failed { id: model.id.clone(), name: model.display_name.clone(), error: e.clone() },
            };
        }
        let status = self.status();
        match status.error.clone() {
            None => {
                // Only an installed model is worth reloading at the next start: a GGUF path that
                // `hearth serve` or `summarize` loaded ad hoc would be forgotten then, and would
                // have replaced the user's own last model.
                match crate::models::registry::get(&self.inner.store, &model.id).await {
                    Ok(Some(_)) => {
                        if let Err(e) = last_used::remember(&self.inner.store, &model.id).await {
                            log::warn!("cannot remember {} as the last-used model: {e}", model.id);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => log::warn!("cannot check whether {} is installed: {e}", model.id),
                }
                on_progress(1.0);
                Ok(status)
            }
            Some(e) => {
                log::warn!("loading {} failed: {} ({})", model.id, e.message, e.code);
                Err(e)
            }
        }
    }

    async fn read_model(
        &self,
        model: &InstalledModel,
        settings: &AppSettings,
        report: Arc<LoadProgress>,
    ) -> HearthResult<(Session, Option<Vision>)> {
        report(0.0);
        let opts = LoadOptions {
            threads: settings.threads.map(|t| t.max(1) as usize),
            device: match settings.device {
                DeviceChoice::Cpu => DevicePreference::Cpu,
                DeviceChoice::Auto | DeviceChoice::Gpu => DevicePreference::Auto,
            },
            tokenizer_cache_dir: Some(self.inner.data_dir.join("cache").join("tokenizers")),
        };
        let path = model.path.clone();
        let mmproj = model.mmproj_path.clone();
        let data_dir = self.inner.data_dir.clone();
        let ctx = settings.context_size.max(1) as usize;
        let inner = self.inner.clone();
        let id = model.id.clone();
        let cpu_only = settings.device == DeviceChoice::Cpu;
        // Reading weights takes seconds: a blocking thread keeps the async workers free.
        let joined = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| -> HearthResult<(Session, Option<Vision>)> {
                let assumed = lock(&inner.assumed_memory).clone();
                check_memory(assumed, &id, &path, mmproj.as_deref(), ctx, cpu_only)?;
                // The engine reports per tensor (hundreds of times); a step per percent is enough.
                let mut last = 0.0f32;
                let engine = Engine::load_with_progress(&path, &opts, &mut |f| {
                    if f - last >= 0.01 && f < 1.0 {
                        last = f;
                        if let Slot::Loading { fraction, .. } = &mut *lock(&inner.slot) {
                            *fraction = f64::from(f);
                        }
                        report(f64::from(f));
                        fail::fail_point!("runtime::load::progress");
                    }
                })?;
                // The vision tower loads with the model, not at the first image: the load is
                // already a background step with progress (an image then never waits seconds
                // mid-turn), a projector that does not match the model is refused here rather
                // than in a conversation, and the memory estimate counts the projector anyway.
                let vision = mmproj.map(|m| Vision::load(&m, &engine, &data_dir)).transpose()?;
                Ok((Session::new(engine, ctx)?, vision))
            }))
        })
        .await;
        match joined {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(HearthError::internal(format!("loading the model crashed: {}", panic_text(&*panic)))),
            Err(e) => Err(HearthError::internal(format!("loading the model stopped: {e}"))),
        }
    }

    /// At start-up: the last-used model, if it is still installed with its file, marked as
    /// loading (so a window's first status already says so); [`Runtime::finish_load`] then
    /// reads it in the background. A model that is gone is forgotten, and the log says why.
    pub async fn startup_model(&self) -> Option<InstalledModel> {
        match last_used::remembered(&self.inner.store).await {
            Ok(LastUsed::Installed(m)) => match self.begin_load(&m) {
                Ok(()) => {
                    log::info!("loading the last-used model {} in the background", m.id);
                    Some(m)
                }
                Err(e) => {
                    log::warn!("not reloading {}: {e}", m.id);
                    None
                }
            },
            Ok(LastUsed::Forgotten { id, reason }) => {
                log::info!("not reloading the last-used model {id:?}: {reason}; it is forgotten");
                None
            }
            Ok(LastUsed::None) => None,
            Err(e) => {
                log::warn!("cannot read the last-used model: {e}");
                None
            }
        }
    }
}
