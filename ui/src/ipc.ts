// The IPC contract between this front end and the Rust shell (src-tauri).
// Every command here maps one-to-one onto a `#[tauri::command]`; argument keys are camelCase
// (Tauri converts them to the Rust snake_case parameter names). See IPC.md for the prose version.
import { invoke, Channel } from '@tauri-apps/api/core';

export { Channel };

// ---------- types ----------
// Every wire type comes from ./generated/ipc.ts, generated from the Rust types (ts-rs; a Rust
// test fails when it is stale). This file adds the commands and the UI's own names for them.
import type * as G from './generated/ipc';
import { ERROR_CODES } from './generated/ipc';

export type {
  ErrorCode, ErrorDetails, Conversation, ConversationPage, SearchHit, MessageRole, MessageState, Message, MessageList,
  GenerationStarted, CatalogEntry, DownloadStatus, InstalledModel, DownloadEvent, LoadEvent, Fit, Theme, Language,
  SettingRange, AttachmentInfo, DocumentCard, PlanSummary, SummaryEvent, SummaryProgress, SummaryResult, Extracted, DocKind, RemoteModelInfo, RemoteCheck, LocalServerSettings, LocalServerStatus,
} from './generated/ipc';
import type {
  RemoteModelInfo, RemoteCheck, LocalServerSettings, LocalServerStatus,
  ErrorCode, ErrorDetails, Conversation, ConversationPage, SearchHit, MessageList, GenerationStarted, CatalogEntry,
  InstalledModel, DownloadEvent, LoadEvent, SettingRange, DocumentCard, SummaryEvent, SummaryResult, Extracted,
} from './generated/ipc';
/** The wire shape every command rejects with (and a failed message's `error`). */
export type HearthErrorPayload = G.HearthError;
export type StopReason = G.ReplyStop;
export type GenerationStats = G.ReplyStats;
/** A reply's stream: tokens, then exactly one `done` or (flattened) `error`. */
export type StreamEvent = G.TurnEvent;
export type ModelState = G.ModelStatus;
export type Settings = G.AppSettings;
/** The Settings page's device choice (auto, cpu, gpu). */
export type DeviceChoice = G.DeviceChoice;
/** A device a model actually runs on (current_model's `device`, available_devices). */
export type Device = G.Device;
export type DownloadProgress = Omit<Extract<G.DownloadEvent, { kind: 'progress' }>, 'kind'>;

// ---------- errors ----------

const CODES: ReadonlySet<string> = new Set<ErrorCode>(ERROR_CODES);

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && CODES.has(s);
}

export class HearthError extends Error implements HearthErrorPayload {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
    this.name = 'HearthError';
  }
}

function detailsOf(v: unknown): ErrorDetails {
  if (!v || typeof v !== 'object') return {};
  const o = v as Record<string, unknown>;
  const out: ErrorDetails = {};
  for (const k of ['path', 'model', 'field'] as const) if (typeof o[k] === 'string') out[k] = o[k] as string;
  for (const k of ['size', 'limit', 'needed', 'available', 'min', 'max'] as const) if (typeof o[k] === 'number' && Number.isFinite(o[k])) out[k] = o[k] as number;
  return out;
}

/**
 * Normalises whatever a rejected invoke (or a stream's flattened `{kind: 'error', code, message,
 * details}` event, or a stored Message.error) gave us into a HearthError. A code this UI does not
 * know becomes `internal`, keeping the original code in front of the message.
 */
export function toHearthError(e: unknown): HearthError {
  if (e instanceof HearthError) return e;
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const o = e as { code: unknown; message: unknown; details?: unknown };
    const message = String(o.message);
    if (isErrorCode(o.code)) return new HearthError(o.code, message, detailsOf(o.details));
    return new HearthError('internal', `${String(o.code)}: ${message}`, detailsOf(o.details));
  }
  if (e instanceof Error) return new HearthError('internal', e.message);
  return new HearthError('internal', String(e));
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toHearthError(e);
  }
}

// ---------- conversations ----------

/** Start and end of a highlighted match inside a search snippet. */
export const SNIPPET_MARK_START = '\u0002';
export const SNIPPET_MARK_END = '\u0003';

export const listConversations = (args: { cursor?: string | null; limit?: number; archived?: boolean } = {}) =>
  call<ConversationPage>('list_conversations', { cursor: args.cursor ?? null, limit: args.limit ?? 50, archived: args.archived ?? false });
export const createConversation = (title?: string) => call<Conversation>('create_conversation', { title: title ?? null });
export const renameConversation = (id: string, title: string) => call<Conversation>('rename_conversation', { id, title });
export const pinConversation = (id: string, pinned: boolean) => call<Conversation>('pin_conversation', { id, pinned });
export const archiveConversation = (id: string, archived: boolean) => call<Conversation>('archive_conversation', { id, archived });
export const deleteConversation = (id: string) => call<void>('delete_conversation', { id });
export const searchConversations = (query: string, limit = 20) => call<SearchHit[]>('search_conversations', { query, limit });

// ---------- messages and generation ----------

export const listMessages = (conversationId: string) => call<MessageList>('list_messages', { conversationId });

export const sendMessage = (conversationId: string, text: string, attachments: string[], onEvent: Channel<StreamEvent>) =>
  call<GenerationStarted>('send_message', { conversationId, text, attachments, onEvent });
export const stopGeneration = (conversationId: string) => call<void>('stop_generation', { conversationId });
export const regenerate = (messageId: string, onEvent: Channel<StreamEvent>) =>
  call<GenerationStarted>('regenerate', { messageId, onEvent });
/** Creates a sibling of the user message `messageId` with the new text and generates a reply on that branch. */
export const editMessage = (messageId: string, text: string, onEvent: Channel<StreamEvent>) =>
  call<GenerationStarted>('edit_message', { messageId, text, onEvent });
/** Makes the branch through `messageId` the active one. */
export const selectBranch = (messageId: string) => call<MessageList>('select_branch', { messageId });

// ---------- models ----------

export const modelCatalog = () => call<CatalogEntry[]>('model_catalog');
export const listInstalledModels = () => call<InstalledModel[]>('list_installed_models');
export const downloadModel = (modelId: string, onProgress: Channel<DownloadEvent>) => call<void>('download_model', { modelId, onProgress });
export const cancelDownload = (modelId: string) => call<void>('cancel_download', { modelId });
export const resumeDownload = (modelId: string, onProgress: Channel<DownloadEvent>) => call<void>('resume_download', { modelId, onProgress });
export const importModel = (path: string) => call<InstalledModel>('import_model', { path });
/** Opens the system file dialog filtered to .gguf; null when the user cancels. */
export const pickModelFile = () => call<string | null>('pick_model_file');
export const removeModel = (modelId: string) => call<void>('remove_model', { modelId });
export const loadModel = (modelId: string, onProgress: Channel<LoadEvent>) => call<ModelState>('load_model', { modelId, onProgress });
export const currentModel = () => call<ModelState>('current_model');
/** The devices this build can run a model on here: the CPU always, a GPU only when compiled in and present. */
export const availableDevices = () => call<Device[]>('available_devices');

// ---------- settings ----------

export const getSettings = () => call<Settings>('get_settings');
export const settingsRanges = () => call<SettingRange[]>('settings_ranges');
/** Applies a partial update and returns the full stored settings; rejects with code 'invalid_setting' on a bad value. */
export const setSettings = (patch: Partial<Settings>) => call<Settings>('set_settings', { patch });
/** Whether a Hugging Face read token is available for gated models (environment, Hearth's token file or the Hugging Face CLI's); the token itself never comes back. */
export const hfTokenStatus = () => call<boolean>('hf_token_status');
/** Stores the Hugging Face read token on this computer ('' forgets Hearth's stored one); answers the status afterwards. */
export const setHfToken = (token: string) => call<boolean>('set_hf_token', { token });

// ---------- remote models ----------

export const listRemoteModels = () => call<RemoteModelInfo[]>('list_remote_models');
/** Adds a model on another machine's OpenAI-compatible server. The key is sent this once and stored on this computer; it never comes back. */
export const addRemoteModel = (args: { name: string; url: string; model: string | null; apiKey: string | null }) =>
  call<RemoteModelInfo>('add_remote_model', args);
export const removeRemoteModel = (name: string) => call<void>('remove_remote_model', { name });
/** Whether its server answers (a failure is in the result's `error`, not a rejection). */
export const checkRemoteModel = (name: string) => call<RemoteCheck>('check_remote_model', { name });

// ---------- local API server ----------

export const localServerStatus = () => call<LocalServerStatus>('local_server_status');
/** Switches the local API server on or off (and sets its port and options); rejects with 'port_in_use' when the port is taken. */
export const setLocalServer = (settings: LocalServerSettings) => call<LocalServerStatus>('set_local_server', { settings });

// ---------- shell ----------

/** Asks the shell to open an http(s) URL in the system browser; the shell confirms with the user first. */
export const openExternal = (url: string) => call<void>('open_external', { url });

// ---------- attachments and documents ----------

/** The system file dialog for attachments; empty when cancelled. */
export const pickAttachmentFiles = () => call<string[]>('pick_attachment_files');
/** Stores a pasted image (base64 of its bytes) in the data folder; answers its path, to attach. */
export const savePastedImage = (dataBase64: string) => call<string>('save_pasted_image', { dataBase64 });
/** A composer image's thumbnail as a data: URL (made and cached by the backend). */
export const imageThumbnail = (path: string) => call<string>('image_thumbnail', { path });
/** A stored image attachment's thumbnail as a data: URL. */
export const attachmentThumbnail = (attachmentId: string) => call<string>('attachment_thumbnail', { attachmentId });
/** A document's card: kind, size, tokens and the summary plan for the loaded model, or its error. Never rejects for the file's own problems. */
export const describeDocument = (path: string) => call<DocumentCard>('describe_document', { path });
/** A document's extracted text. */
export const documentText = (path: string) => call<Extracted>('document_text', { path });
/** A stored document attachment's text (a message's, in the history). */
export const attachmentText = (attachmentId: string) => call<Extracted>('attachment_text', { attachmentId });
/** Summarizes documents on the loaded model; progress on `onEvent`; answers when done or cancelled. */
export const summarizeDocuments = (paths: string[], onEvent: Channel<SummaryEvent>) => call<SummaryResult>('summarize_documents', { paths, onEvent });
/** Stops the running summary (its finished steps stay stored; summarizing again resumes). */
export const cancelSummary = () => call<void>('cancel_summary');
