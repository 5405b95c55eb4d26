// The IPC contract between this front end and the Rust shell (src-tauri).
// Every command here maps one-to-one onto a `#[tauri::command]`; argument keys are camelCase
// (Tauri converts them to the Rust snake_case parameter names). See IPC.md for the prose version.
import { invoke, Channel } from '@tauri-apps/api/core';

export { Channel };

// ---------- errors ----------

/** Every command rejects with this shape; `code` is stable and machine-readable. */
export interface IpcErrorPayload {
  code: string;
  message: string;
}

export class HearthError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'HearthError';
  }
}

/** Normalises whatever a rejected invoke gave us into a HearthError (the shell may also send plain strings). */
export function toHearthError(e: unknown): HearthError {
  if (e instanceof HearthError) return e;
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const o = e as { code: unknown; message: unknown };
    return new HearthError(String(o.code), String(o.message));
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

export interface Conversation {
  id: string;
  title: string;
  pinned: boolean;
  archived: boolean;
  /** RFC 3339 timestamps. */
  createdAt: string;
  updatedAt: string;
}

export interface ConversationPage {
  items: Conversation[];
  /** Opaque cursor for the next page; null when there is none. */
  nextCursor: string | null;
}

/** Start and end of a highlighted match inside a search snippet. */
export const SNIPPET_MARK_START = '\u0002';
export const SNIPPET_MARK_END = '\u0003';

export interface SearchHit {
  conversationId: string;
  messageId: string | null;
  title: string;
  /** Plain text; matched spans are wrapped in \u0002 ... \u0003 (FTS5 snippet() markers). Never HTML. */
  snippet: string;
}

export const listConversations = (args: { cursor?: string | null; limit?: number; archived?: boolean } = {}) =>
  call<ConversationPage>('list_conversations', { cursor: args.cursor ?? null, limit: args.limit ?? 50, archived: args.archived ?? false });
export const createConversation = (title?: string) => call<Conversation>('create_conversation', { title: title ?? null });
export const renameConversation = (id: string, title: string) => call<Conversation>('rename_conversation', { id, title });
export const pinConversation = (id: string, pinned: boolean) => call<Conversation>('pin_conversation', { id, pinned });
export const archiveConversation = (id: string, archived: boolean) => call<Conversation>('archive_conversation', { id, archived });
export const deleteConversation = (id: string) => call<void>('delete_conversation', { id });
export const searchConversations = (query: string, limit = 20) => call<SearchHit[]>('search_conversations', { query, limit });

// ---------- messages and generation ----------

export type MessageRole = 'user' | 'assistant';
export type MessageState = 'complete' | 'streaming' | 'interrupted' | 'error';
export type StopReason = 'eos' | 'max_tokens' | 'stopped' | 'context_full';

export interface GenerationStats {
  /** Tokens generated for this reply. */
  tokens: number;
  tokensPerS: number;
  stopReason: StopReason;
  /** Prompt tokens processed for this reply, when known. */
  promptTokens?: number;
}

export interface Message {
  id: string;
  conversationId: string;
  role: MessageRole;
  text: string;
  state: MessageState;
  /** Set when state is 'error'. */
  error?: IpcErrorPayload | null;
  stats?: GenerationStats | null;
  /** Names of the files attached to a user message (send_message takes their paths). */
  attachments?: string[];
  createdAt: string;
  /**
   * Position among siblings (edits and regenerations create siblings): index counts from 0 and
   * siblingIds lists every sibling in order, this message included, for select_branch.
   */
  branch: { index: number; count: number; siblingIds: string[] };
}

export interface MessageList {
  /** The active branch, oldest first. */
  messages: Message[];
  /** Tokens the active branch occupies in the model's context. */
  contextTokens: number;
}

export type StreamEvent =
  | { kind: 'token'; text: string }
  | { kind: 'done'; stats: GenerationStats }
  | { kind: 'error'; message: string; code?: string };

/** What send/regenerate/edit resolve with: the ids the backend assigned. Tokens arrive on the channel. */
export interface GenerationStarted {
  userMessageId: string | null;
  assistantMessageId: string;
}

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

export type Fit = 'fits' | 'tight' | 'too_big';

export interface CatalogEntry {
  id: string;
  name: string;
  /** e.g. "Gemma 3 4B". */
  family: string;
  quant: string;
  sizeBytes: number;
  /** Estimated memory to run at the default context size. */
  requiredBytes: number;
  /** Memory the machine has free for a model. */
  availableBytes: number;
  fit: Fit;
  /** Parameter count as the catalog writes it, e.g. "270M", "4B" (the UI words it per language). */
  params: string;
  /** The model's longest context, in tokens. */
  contextLength: number;
  installed: boolean;
  /** Present when a download exists (running, paused or failed). */
  download?: DownloadStatus | null;
}

export interface DownloadStatus {
  state: 'running' | 'paused' | 'failed';
  bytes: number;
  total: number;
}

export interface InstalledModel {
  id: string;
  name: string;
  path: string;
  sizeBytes: number;
  quant: string;
  contextLength: number;
}

export interface DownloadProgress {
  bytes: number;
  total: number;
  /** Bytes per second. */
  rate: number;
  /** Seconds remaining, null when unknown. */
  eta: number | null;
}

export type DownloadEvent =
  | ({ kind: 'progress' } & DownloadProgress)
  | { kind: 'done'; model: InstalledModel }
  | { kind: 'cancelled' }
  | { kind: 'error'; message: string; code?: string };

export type LoadEvent = { kind: 'progress'; fraction: number } | { kind: 'done' } | { kind: 'error'; message: string; code?: string };

export interface ModelState {
  state: 'none' | 'loading' | 'ready' | 'error';
  modelId: string | null;
  name: string | null;
  /** Context size the loaded model runs with. */
  contextSize: number | null;
  /** While loading: the fraction read so far (0..1). */
  loadFraction?: number | null;
  error?: IpcErrorPayload | null;
}

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

// ---------- settings ----------

export type Theme = 'light' | 'dark' | 'system';
export type Language = 'ko' | 'en';
export type Device = 'auto' | 'cpu' | 'gpu';

export interface Settings {
  systemPrompt: string;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  repeatPenalty: number;
  /** null = random seed each time. */
  seed: number | null;
  contextSize: number;
  /** null = automatic. */
  threads: number | null;
  device: Device;
  theme: Theme;
  language: Language;
}

/** One numeric setting's allowed values (the backend's validation table, one row per field). */
export interface SettingRange {
  field: keyof Settings;
  min: number;
  max: number;
  step: number;
  integer: boolean;
  nullable: boolean;
}

export const getSettings = () => call<Settings>('get_settings');
export const settingsRanges = () => call<SettingRange[]>('settings_ranges');
/** Applies a partial update and returns the full stored settings; rejects with code 'invalid_setting' on a bad value. */
export const setSettings = (patch: Partial<Settings>) => call<Settings>('set_settings', { patch });

// ---------- shell ----------

/** Asks the shell to open an http(s) URL in the system browser; the shell confirms with the user first. */
export const openExternal = (url: string) => call<void>('open_external', { url });
