// Generated from the Rust types by `hearth::bindings` (src-tauri's bindings test). Do not edit:
// run `UPDATE_BINDINGS=1 cargo test -p hearth-app bindings` after changing a Rust type.

export type ErrorCode = "not_found" | "invalid_id" | "invalid_title" | "invalid_url" | "invalid_message" | "invalid_setting" | "invalid_query" | "busy" | "no_model" | "model_in_use" | "context_full" | "context_too_long" | "not_gguf" | "unsupported_model" | "out_of_memory" | "already_installed" | "download_running" | "disk_full" | "io" | "locked" | "read_only" | "database_corrupt" | "newer_schema" | "network" | "gated" | "checksum" | "bad_download" | "catalog" | "attachment_missing" | "attachment_unreadable" | "attachment_too_large" | "engine" | "internal" | "document_no_text" | "document_encrypted" | "document_unreadable" | "document_too_large" | "remote" | "image_input_unsupported" | "document_too_long" | "port_in_use";

export type ErrorDetails = { 
/**
 * A file or folder.
 */
path?: string, 
/**
 * A model id, name or Hugging Face repository.
 */
model?: string, 
/**
 * A settings field, or what was not found (`conversation`, `message`, `model`, ...).
 */
field?: string, size?: number, limit?: number, needed?: number, available?: number, 
/**
 * A range's bounds (settings) or a count's maximum (context).
 */
min?: number, max?: number, };

export type HearthError = { code: ErrorCode, 
/**
 * The underlying error in English (the CLI prints it; the window shows it under
 * "details"). Never instructions for the CLI.
 */
message: string, details: ErrorDetails, };

export type ModelPhase = "none" | "loading" | "ready" | "error";

export type Device = "cpu" | "cuda" | "metal";

export type ModelStatus = { state: ModelPhase, modelId: string | null, name: string | null, 
/**
 * The context the loaded model was given (tokens), once ready.
 */
contextSize: number | null, 
/**
 * While loading: the fraction read so far (0..=1).
 */
loadFraction: number | null, 
/**
 * The device the loaded model runs on, once ready.
 */
device: Device | null, 
/**
 * The CPU threads the loaded model runs on, once ready.
 */
threads: number | null, 
/**
 * Whether the loaded model reads images (it was loaded with its vision projector).
 */
readsImages: boolean, 
/**
 * Why the last load failed.
 */
error: HearthError | null, 
/**
 * For a remote model: its server's address (it runs there, not here).
 */
remoteUrl?: string, };

export type ReplyStop = "eos" | "max_tokens" | "stopped" | "context_full";

export type ReplyStats = { tokens: number, tokensPerS: number, stopReason: ReplyStop, promptTokens?: number, };

export type TurnEvent = { "kind": "token", text: string, } | { "kind": "done", stats: ReplyStats, } | { "kind": "error", code: ErrorCode, 
/**
 * The underlying error in English (the CLI prints it; the window shows it under
 * "details"). Never instructions for the CLI.
 */
message: string, details: ErrorDetails, };

export type DeviceChoice = "auto" | "cpu" | "gpu";

export type Theme = "light" | "dark" | "system";

export type Language = "ko" | "en";

export type AppSettings = { systemPrompt: string, temperature: number, topP: number, topK: number, minP: number, repeatPenalty: number, seed: number | null, contextSize: number, threads: number | null, device: DeviceChoice, theme: Theme, language: Language, 
/**
 * Pan & Scan: an elongated image is read as the whole image plus up to 4 crops (the
 * reference processor's rule, [`PanScan::default`]), at up to 5 times the soft tokens. Off
 * by default, as in the reference. Absent from settings stored before it existed.
 */
panScan: boolean, };

export type SettingRange = { field: keyof AppSettings, min: number, max: number, step: number, 
/**
 * Whole numbers only.
 */
integer: boolean, 
/**
 * `null` is allowed (a random seed, automatic threads).
 */
nullable: boolean, };

export type Conversation = { id: string, title: string, pinned: boolean, archived: boolean, createdAt: string, updatedAt: string, };

export type ConversationPage = { items: Array<Conversation>, nextCursor: string | null, };

export type SearchHit = { conversationId: string, messageId: string | null, title: string, snippet: string, };

export type MessageRole = "user" | "assistant";

export type MessageState = "complete" | "streaming" | "interrupted" | "error";

export type Branch = { index: number, count: number, siblingIds: Array<string>, };

export type AttachmentInfo = { id: string, name: string, kind: "image" | "document", sizeBytes: number, };

export type Message = { id: string, conversationId: string, role: MessageRole, text: string, state: MessageState, error: HearthError | null, stats: ReplyStats | null, attachments: Array<string>, 
/**
 * `attachments` with their ids and kinds, in the same order.
 */
attachmentItems: Array<AttachmentInfo>, createdAt: string, branch: Branch, };

export type MessageList = { messages: Array<Message>, contextTokens: number, };

export type GenerationStarted = { userMessageId: string | null, assistantMessageId: string, };

export type LoadEvent = { "kind": "progress", fraction: number, } | { "kind": "done" } | { "kind": "error", code: ErrorCode, 
/**
 * The underlying error in English (the CLI prints it; the window shows it under
 * "details"). Never instructions for the CLI.
 */
message: string, details: ErrorDetails, };

export type InstalledModel = { id: string, name: string, path: string, sizeBytes: number, quant: string, contextLength: number, };

export type Fit = "fits" | "tight" | "too_big";

export type DownloadPhase = "running" | "paused" | "failed";

export type DownloadStatus = { state: DownloadPhase, bytes: number, total: number, };

export type CatalogEntry = { id: string, name: string, family: string, quant: string, sizeBytes: number, requiredBytes: number, availableBytes: number, fit: Fit, 
/**
 * The catalog's parameter count as written there ("270M", "4B"); the UI words the
 * description from it and `context_length` in the user's language.
 */
params: string, contextLength: number, installed: boolean, download: DownloadStatus | null, };

export type DownloadEvent = { "kind": "progress", bytes: number, total: number, rate: number, eta: number | null, } | { "kind": "done", model: InstalledModel, } | { "kind": "cancelled" } | { "kind": "error", code: ErrorCode, 
/**
 * The underlying error in English (the CLI prints it; the window shows it under
 * "details"). Never instructions for the CLI.
 */
message: string, details: ErrorDetails, };

export type DocKind = "text" | "markdown" | "html" | "pdf" | "docx" | "code" | "csv" | "json";

export type Extracted = { kind: DocKind, text: string, chars: number, };

export type Mode = "whole" | "map_reduce";

export type Step = { "kind": "whole" } | { "kind": "map", index: number, } | { "kind": "reduce", level: number, index: number, };

export type PlanSummary = { mode: Mode, 
/**
 * The loaded model's context, which the run uses.
 */
context: number, chunks: number, reduceLevels: number, 
/**
 * Prompt tokens the whole run reads (instructions included).
 */
promptTokens: number, 
/**
 * At the model's last measured prompt speed; `None` before any reply measured one.
 */
seconds: number | null, kvBytes: number, 
/**
 * Weights, KV cache and runtime allowance.
 */
memoryBytes: number, 
/**
 * `fits`, `tight` or `too big` against this machine's free memory.
 */
memoryVerdict: string, };

export type DocumentCard = { path: string, name: string, 
/**
 * The file's size on disk (0 when it cannot be read).
 */
sizeBytes: number, 
/**
 * What it was read as; `None` when it could not be read.
 */
kind: DocKind | null, chars: number | null, 
/**
 * Tokens for the loaded model; `None` without one.
 */
tokens: number | null, 
/**
 * The model slot when the card was made: without a ready model there is no plan.
 */
model: ModelPhase, plan: PlanSummary | null, 
/**
 * Why the file cannot be read (`document_*`, `not_found`, ...) or summarized (`context_full`).
 */
error: HearthError | null, };

export type SummaryProgress = { 
/**
 * Prompt tokens read so far (steps resumed from storage count as read).
 */
tokensRead: number, 
/**
 * The plan's estimate of all prompt tokens.
 */
tokensTotal: number, stepsDone: number, stepsTotal: number, 
/**
 * Prompt tokens per second over this run's computed steps (0 before the first).
 */
tokensPerS: number, secondsLeft: number | null, };

export type SummaryEvent = { "kind": "progress" } & SummaryProgress | { "kind": "step", step: Step, resumed: boolean, } | { "kind": "text", text: string, };

export type SummaryResult = { 
/**
 * The new conversation holding the documents and the summary; `None` when cancelled
 * (the finished steps stay stored, and the same summary started again resumes).
 */
conversationId: string | null, cancelled: boolean, summary: string, mode: Mode, chunks: number, seconds: number, };

export type RemoteModelInfo = { name: string, 
/**
 * The server's base URL.
 */
url: string, 
/**
 * The server's model id asked for; `null`: the first one it lists.
 */
model: string | null, hasKey: boolean, addedAt: string, };

export type RemoteCheck = { name: string, 
/**
 * The model ids the server lists (empty when it failed).
 */
models: Array<string>, 
/**
 * Why it did not answer; `None`: it answered.
 */
error: HearthError | null, };

export type LocalServerSettings = { 
/**
 * On: the server runs, and comes back at the next start.
 */
enabled: boolean, 
/**
 * The loopback port (1..=65535).
 */
port: number, 
/**
 * Keep each answered API request as a conversation.
 */
store: boolean, 
/**
 * Clients must send the key (`Authorization: Bearer KEY`). Off by default: the server
 * listens on loopback only, and the key is there for clients that insist on one.
 */
requireKey: boolean, };

export type LocalServerStatus = { settings: LocalServerSettings, 
/**
 * While it runs: the base URL clients use (`http://127.0.0.1:PORT/v1`).
 */
url: string | null, 
/**
 * The key, once one was generated (the first time the server was switched on).
 */
apiKey: string | null, 
/**
 * Why the server is not running although switched on (e.g. the port was taken at start-up).
 */
error: HearthError | null, };

export const ERROR_CODES: readonly ErrorCode[] = ["not_found", "invalid_id", "invalid_title", "invalid_url", "invalid_message", "invalid_setting", "invalid_query", "busy", "no_model", "model_in_use", "context_full", "context_too_long", "not_gguf", "unsupported_model", "out_of_memory", "already_installed", "download_running", "disk_full", "io", "locked", "read_only", "database_corrupt", "newer_schema", "network", "gated", "checksum", "bad_download", "catalog", "attachment_missing", "attachment_unreadable", "attachment_too_large", "engine", "internal", "document_no_text", "document_encrypted", "document_unreadable", "document_too_large", "remote", "image_input_unsupported", "document_too_long", "port_in_use"];
